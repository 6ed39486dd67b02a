package gc_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/cosign/cosigntest"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/gc"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/registry"
	"github.com/skiffhq/skiff/internal/release"
)

// upstream is the registry the test packages name; builds reach it
// through a mirror to a fixture registry.
const upstream = "127.0.0.1:15999"

// buildPackage builds a manifests-only package whose Deployment runs
// images (names under upstream) and returns the archive path.
func buildPackage(t *testing.T, up, version string, imgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	var containers strings.Builder
	for i, im := range imgs {
		fmt.Fprintf(&containers, "        - name: c%d\n          image: %s/%s\n", i, upstream, im)
	}
	files := map[string]string{
		"skiff.yaml": fmt.Sprintf(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata:
  name: gcdemo
  version: %s
manifests:
  - name: app
    files: [manifests]
`, version),
		"manifests/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: gcdemo}
  template:
    metadata:
      labels: {app: gcdemo}
    spec:
      containers:
` + containers.String(),
	}
	fixture.WriteFiles(t, dir, files)
	out := filepath.Join(t.TempDir(), "gcdemo-"+version+".skiff")
	_, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out,
		Remote: oci.RemoteOptions{Mirrors: map[string]string{upstream: up}}})
	if err != nil {
		t.Fatalf("build %s: %v", version, err)
	}
	return out
}

func open(t *testing.T, path string) *install.Package {
	t.Helper()
	p, err := install.Open(context.Background(), path, bundle.OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestGCAfterRollback(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	up := fixture.Registry(t)
	for i, im := range []string{"gc/a:1", "gc/b:1", "gc/c:1"} {
		fixture.PushImage(t, up+"/"+im, fixture.ImageOptions{Layers: []int{2048, 1024}, Seed: int64(100 + i)})
	}
	v1 := buildPackage(t, up, "1.0.0", "gc/a:1", "gc/b:1")
	v2 := buildPackage(t, up, "2.0.0", "gc/a:1", "gc/c:1")

	root := t.TempDir()
	srv := fixture.StartRegistry(t, registry.Options{RootDir: root})
	airgap := srv.Addr()
	ns := fmt.Sprintf("skiff-gc-%d", time.Now().UnixNano()%1e6)
	cluster := install.Cluster{Kubeconfig: kubeconfig}
	opts := install.Options{Deployment: "gcdemo", Namespace: ns, Cluster: cluster,
		Load: install.LoadOptions{Registry: airgap + "/airgap"}, Timeout: time.Minute}

	r1, err := install.Install(ctx, open(t, v1), opts)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	t.Cleanup(func() {
		_ = install.Uninstall(context.Background(), ns, "gcdemo", install.UninstallOptions{Cluster: cluster, NoWait: true})
	})
	r2, err := install.Upgrade(ctx, open(t, v2), opts)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if _, err := install.Rollback(ctx, ns, "gcdemo", install.RollbackOptions{Cluster: cluster, Revision: 1, Timeout: time.Minute}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	ref := func(r *release.Record, im string) string { return r.Images[upstream+"/"+im] }
	a, b, c := ref(r1.Record, "gc/a:1"), ref(r1.Record, "gc/b:1"), ref(r2.Record, "gc/c:1")
	if a == "" || b == "" || c == "" {
		t.Fatalf("records miss images: %v %v", r1.Record.Images, r2.Record.Images)
	}

	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	// Only this test's namespace: other tests' records must not matter.
	records := nsRecords{release.NewSecrets(kc), ns}
	reg, err := oci.NewRegistry(airgap, oci.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exists := func(ref string) bool {
		t.Helper()
		_, repo, dg, err := oci.SplitRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = reg.Resolve(ctx, repo, dg)
		if err != nil && !errors.Is(err, oci.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	// Every stored revision retained: revision 2 still needs c.
	res, err := gc.Run(ctx, gc.Options{Registry: airgap + "/airgap", Records: records, DryRun: true})
	if err != nil {
		t.Fatalf("gc dry run: %v", err)
	}
	if len(res.Deleted) != 0 || res.Revisions != 3 {
		t.Errorf("gc keeping all history: %d revisions retained, deletes %v; want 3 and none", res.Revisions, res.Deleted)
	}

	// --keep-history 1 --dry-run: c would go, nothing is deleted.
	res, err = gc.Run(ctx, gc.Options{Registry: airgap + "/airgap", Records: records, KeepHistory: 1, DryRun: true, Root: root})
	if err != nil {
		t.Fatalf("gc dry run: %v", err)
	}
	if len(res.Deleted) != 1 || !strings.HasPrefix(c, airgap+"/"+res.Deleted[0].Repository+"@") || !strings.HasSuffix(c, res.Deleted[0].Digest.String()) {
		t.Fatalf("dry run would delete %+v, want only %s", res.Deleted, c)
	}
	if !exists(c) {
		t.Fatal("dry run deleted c")
	}

	// --keep-history 1 for real: with --root on a served root gc refuses
	// before deleting anything; without it manifests go through the
	// running registry.
	if _, err := gc.Run(ctx, gc.Options{Registry: airgap + "/airgap", Records: records, KeepHistory: 1, Root: root}); !errors.Is(err, registry.ErrServing) {
		t.Fatalf("gc --root on a served root: %v, want ErrServing", err)
	}
	if !exists(c) {
		t.Fatal("gc refused the sweep but deleted c first")
	}
	res, err = gc.Run(ctx, gc.Options{Registry: airgap + "/airgap", Records: records, KeepHistory: 1})
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	if exists(c) {
		t.Errorf("c (%s) survived gc", c)
	}
	if len(res.Kept) != 2 {
		t.Errorf("kept %+v, want a and b", res.Kept)
	}
	// Then the sweep, with the registry stopped, and the registry again.
	srv.Close()
	blobs, err := registry.GC(ctx, root, registry.GCOptions{})
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if blobs.BlobsAfter >= blobs.BlobsBefore {
		t.Errorf("blob sweep freed nothing: %+v", blobs)
	}
	again := fixture.StartRegistry(t, registry.Options{RootDir: root}).Addr()
	if reg, err = oci.NewRegistry(again, oci.RemoteOptions{}); err != nil {
		t.Fatal(err)
	}
	if exists(c) {
		t.Errorf("c (%s) back after the sweep", c)
	}
	for _, ref := range []string{a, b} {
		if !exists(ref) {
			t.Errorf("%s, needed by the deployed revision, was deleted", ref)
		}
	}
	if _, err := reg.Resolve(ctx, "airgap/gc/c", "1"); !errors.Is(err, oci.ErrNotFound) {
		t.Errorf("tag gc/c:1 after gc: %v, want not found", err)
	}
	// What remains still pulls: every blob of a and b is there.
	for _, ref := range []string{a, b} {
		moved := again + strings.TrimPrefix(ref, airgap)
		if _, err := oci.Pull(ctx, []string{moved}, memory.New(), oci.PullOptions{}); err != nil {
			t.Errorf("pulling %s after gc: %v", moved, err)
		}
	}
}

func TestGCRefusesWithoutRecords(t *testing.T) {
	airgap := fixture.Registry(t)
	fixture.PushImage(t, airgap+"/x/app:1", fixture.ImageOptions{Layers: []int{512}, Seed: 7})
	ctx := context.Background()
	_, err := gc.Run(ctx, gc.Options{Registry: airgap + "/x", Records: fixedRecords(nil)})
	if !errors.Is(err, gc.ErrNoRecords) {
		t.Fatalf("gc with no records: %v, want ErrNoRecords", err)
	}
	res, err := gc.Run(ctx, gc.Options{Registry: airgap + "/x", Records: fixedRecords(nil), DryRun: true})
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("dry run with no records: %v %+v, want one deletion listed", err, res)
	}
	// Another prefix is out of scope.
	res, err = gc.Run(ctx, gc.Options{Registry: airgap + "/other", Records: fixedRecords(nil)})
	if err != nil || len(res.Deleted)+len(res.Kept) != 0 {
		t.Fatalf("gc of an empty prefix: %v %+v", err, res)
	}
}

func TestRetained(t *testing.T) {
	rec := func(dep string, rev int, st release.Status) *release.Record {
		return &release.Record{Namespace: "ns", Deployment: dep, Revision: rev, Status: st}
	}
	recs := []*release.Record{
		rec("a", 1, release.StatusSuperseded), rec("a", 2, release.StatusDeployed), rec("a", 3, release.StatusFailed),
		rec("b", 1, release.StatusSuperseded), rec("b", 2, release.StatusSuperseded), rec("b", 3, release.StatusPendingUpgrade),
	}
	for _, tc := range []struct {
		keep int
		want string
	}{
		{0, "a1 a2 a3 b1 b2 b3"},
		{1, "a2 a3 b3"},
		{2, "a2 a3 b2 b3"},
	} {
		var got []string
		for _, r := range gc.Retained(recs, tc.keep) {
			got = append(got, fmt.Sprintf("%s%d", r.Deployment, r.Revision))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("keep %d: retained %v, want %s", tc.keep, got, tc.want)
		}
	}
}

type nsRecords struct {
	d  *release.SecretsDriver
	ns string
}

func (r nsRecords) ListAll(ctx context.Context, _ string) ([]*release.Record, error) {
	return r.d.ListAll(ctx, r.ns)
}

type fixedRecords []*release.Record

func (f fixedRecords) ListAll(context.Context, string) ([]*release.Record, error) { return f, nil }

// TestGCKeepsMaterialOfKeptImages: an image's cosign signature and its
// OCI referrers (kept under the referrers tag by a registry without the
// referrers API) stay while the image does, and go with it.
func TestGCKeepsMaterialOfKeptImages(t *testing.T) {
	ctx := context.Background()
	airgap := fixture.Registry(t)
	key, _ := cosigntest.NewECDSAKey(t)
	push := func(name string, seed int64) (ocispec.Descriptor, ocispec.Descriptor) {
		img := fixture.PushImage(t, airgap+"/x/"+name+":1", fixture.ImageOptions{Layers: []int{256}, Seed: seed})
		cosigntest.Sign(t, airgap+"/x/"+name, img.Digest, img.Digest, key)
		att := cosigntest.Attach(t, airgap+"/x/"+name, img, "application/vnd.example.sbom+json", []byte(name))
		cosigntest.Attach(t, airgap+"/x/"+name, att, "application/vnd.example.signature", []byte("sig of "+name))
		return img, att
	}
	kept, keptAtt := push("kept", 1)
	gone, goneAtt := push("gone", 2)
	recs := fixedRecords{{Deployment: "d", Namespace: "ns", Revision: 1, Status: release.StatusDeployed,
		Images: map[string]string{"x/kept:1": airgap + "/x/kept@" + kept.Digest.String()}}}
	if _, err := gc.Run(ctx, gc.Options{Registry: airgap + "/x", Records: recs}); err != nil {
		t.Fatal(err)
	}
	reg, err := oci.NewRegistry(airgap, oci.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, ref string
		want      bool
	}{
		{"x/kept", cosign.SignatureTag(kept.Digest, "sig"), true},
		{"x/kept", "sha256-" + kept.Digest.Encoded(), true},
		{"x/kept", "sha256-" + keptAtt.Digest.Encoded(), true},
		{"x/kept", keptAtt.Digest.String(), true},
		{"x/gone", "1", false},
		{"x/gone", cosign.SignatureTag(gone.Digest, "sig"), false},
		{"x/gone", "sha256-" + gone.Digest.Encoded(), false},
		{"x/gone", "sha256-" + goneAtt.Digest.Encoded(), false},
		{"x/gone", goneAtt.Digest.String(), false},
	} {
		_, err := reg.Resolve(ctx, tc.repo, tc.ref)
		if err != nil && !errors.Is(err, oci.ErrNotFound) {
			t.Fatal(err)
		}
		if (err == nil) != tc.want {
			t.Errorf("%s:%s after gc: %v, want it kept: %v", tc.repo, tc.ref, err, tc.want)
		}
	}
}
