package artifact_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/artifact"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/sign"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want artifact.Ref
		bad  bool
	}{
		{in: "oci://127.0.0.1:5000/pkgs/shop:1.2.0", want: artifact.Ref{Host: "127.0.0.1:5000", Repo: "pkgs/shop", Tag: "1.2.0"}},
		{in: "oci://reg.example/shop", want: artifact.Ref{Host: "reg.example", Repo: "shop"}},
		{in: "oci://reg.example/shop@sha256:" + sixtyFour, want: artifact.Ref{Host: "reg.example", Repo: "shop", Tag: "sha256:" + sixtyFour}},
		{in: "reg.example/shop:1", bad: true},
		{in: "oci://reg.example", bad: true},
		{in: "oci://reg.example/Shop:1", bad: true},
	} {
		got, err := artifact.ParseRef(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRef(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestVersionTag(t *testing.T) {
	for in, want := range map[string]string{"1.2.0": "1.2.0", "1.2.0+build.7": "1.2.0_build.7", "v2-rc.1": "v2-rc.1"} {
		if got, err := artifact.VersionTag(in); err != nil || got != want {
			t.Errorf("VersionTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := artifact.VersionTag("1 2"); err == nil {
		t.Error("VersionTag accepted a version with a space")
	}
}

// TestRoundTrip pushes a signed archive into a registry with the
// referrers API (the embedded one behind the fixture that adds the API)
// and registries without it (the embedded one as it is, and Debian's
// docker-registry 2.8: both get the referrers tag), pulls it back, and
// compares bytes; the pulled archive's signature verifies.
func TestRoundTrip(t *testing.T) {
	for _, reg := range []struct{ name, host func(*testing.T) string }{
		{func(*testing.T) string { return "embedded" }, func(t *testing.T) string { return fixture.Registry(t) }},
		{func(*testing.T) string { return "referrers API" }, func(t *testing.T) string { return fixture.ReferrersRegistry(t) }},
		{func(*testing.T) string { return "docker-registry" }, func(t *testing.T) string { return fixture.DockerRegistry(t) }},
	} {
		t.Run(reg.name(t), func(t *testing.T) {
			testRoundTrip(t, reg.host(t))
		})
	}
}

func testRoundTrip(t *testing.T, host string) {
	ctx := context.Background()
	key, trustDir := hubtest.TrustedKey(t)
	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "shop", "1.2.0+b1", uint64(len(t.Name())), key)
	// A second signature: both must come back.
	key2, _ := hubtest.TrustedKey(t)
	if err := addSignature(ctx, archive, key2); err != nil {
		t.Fatal(err)
	}
	repo := "round/" + rand.Text()[:12] // the docker-registry outlives the test: a fresh repository
	repo = strings.ToLower(repo)
	ref, err := artifact.ParseRef("oci://" + host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	res, err := artifact.Push(ctx, archive, ref, artifact.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if res.Ref.Tag != "1.2.0_b1" || res.Signatures != 2 || res.Push.BlobsPushed == 0 {
		t.Fatalf("push result %+v (%+v)", res, res.Push)
	}
	// Pushing again uploads nothing.
	again, err := artifact.Push(ctx, archive, ref, artifact.PushOptions{})
	if err != nil || again.Push.BlobsPushed != 0 {
		t.Fatalf("second push: %v, %+v", err, again.Push)
	}

	out := filepath.Join(dir, "pulled.skiff")
	events := 0
	pres, err := artifact.Pull(ctx, res.Ref, out, artifact.PullOptions{
		StagingDir: filepath.Join(dir, "stage"),
		Transfer:   func(oci.Event) { events++ },
	})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if pres.Signatures != 2 || events == 0 {
		t.Fatalf("pull result %+v, %d events", pres, events)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("pulled archive differs from the pushed one (%d vs %d bytes)", len(got), len(want))
	}
	a, err := bundle.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	trust, err := sign.LoadTrust(trustDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifySignature(ctx, trust); err != nil {
		t.Fatalf("signature of the pulled archive: %v", err)
	}

	// By digest too.
	byDigest := res.Ref
	byDigest.Tag = res.Root
	if _, err := artifact.Pull(ctx, byDigest, filepath.Join(dir, "bydigest.skiff"), artifact.PullOptions{StagingDir: filepath.Join(dir, "stage")}); err != nil {
		t.Fatalf("pull by digest: %v", err)
	}

	// A missing tag names the problem.
	missing := res.Ref
	missing.Tag = "9.9.9"
	if _, err := artifact.Pull(ctx, missing, filepath.Join(dir, "missing.skiff"), artifact.PullOptions{StagingDir: filepath.Join(dir, "stage")}); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("pull of a missing tag: %v, want ErrNotFound", err)
	}
}

func TestPullRefusesNonPackage(t *testing.T) {
	host := fixture.Registry(t)
	fixture.PushImage(t, host+"/plain/image:1", fixture.ImageOptions{Layers: []int{100}})
	ref, _ := artifact.ParseRef("oci://" + host + "/plain/image:1")
	_, err := artifact.Pull(context.Background(), ref, filepath.Join(t.TempDir(), "x.skiff"), artifact.PullOptions{StagingDir: t.TempDir()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not a Skiff package")) {
		t.Fatalf("pull of a plain image: %v", err)
	}
}

func addSignature(ctx context.Context, archive string, key *sign.PrivateKey) error {
	a, err := bundle.Open(archive)
	if err != nil {
		return err
	}
	root := a.Root()
	a.Close()
	env, err := sign.Sign(ctx, key, sign.Subject{Name: "shop:1.2.0+b1", Digest: root.Digest}, nil)
	if err != nil {
		return err
	}
	return bundle.AddSignature(ctx, archive, env)
}
