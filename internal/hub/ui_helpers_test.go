package hub_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
	"github.com/skiffhq/skiff/internal/sign"
	"github.com/skiffhq/skiff/internal/vuln"
)

const uiPassword = "correct-horse-battery"

// uiHub is a running hub for the web UI tests, with users:
//
//	root   site administrator
//	alice  admin on acme (she uploads)
//	bob    admin on acme (the reviewer)
//	carol  read on acme
//
// and the vulnerability gate (blocking high and critical findings)
// over a database with one advisory: npm left-pad < 1.3.0, HIGH.
type uiHub struct {
	hub *hub.Hub
	url string // http://127.0.0.1:PORT
	key *sign.PrivateKey
}

func newUIHub(t *testing.T, now func() time.Time) *uiHub {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, trustDir := hubtest.TrustedKey(t)
	advisories := t.TempDir()
	os.WriteFile(filepath.Join(advisories, "GHSA-test-0001.json"), []byte(`{"id":"GHSA-test-0001","aliases":["CVE-2099-0001"],"summary":"left-pad pads wrong",
	 "affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}],
	 "database_specific":{"severity":"HIGH"}}`), 0o644)
	dbDir := filepath.Join(t.TempDir(), "vulndb")
	if _, err := vuln.Import(ctx, dbDir, advisories); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(ctx, hub.Options{
		Root:     t.TempDir(),
		TrustDir: trustDir,
		Now:      now,
		Gates:    []hub.Gate{hub.VulnGate(hub.VulnGateOptions{DBDir: dbDir, Policy: vuln.Policy{FailOn: vuln.SeverityHigh}})},
	})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	host := hubtest.Serve(t, h) // 127.0.0.1
	st := h.Store()
	for _, u := range []struct {
		name  string
		admin bool
	}{{"root", true}, {"alice", false}, {"bob", false}, {"carol", false}} {
		if err := st.AddUser(ctx, u.name, uiPassword, u.admin); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct {
		user  string
		level hub.Level
	}{{"alice", hub.LevelAdmin}, {"bob", hub.LevelAdmin}, {"carol", hub.LevelRead}} {
		if err := st.Grant(ctx, "acme", g.user, g.level); err != nil {
			t.Fatal(err)
		}
	}
	return &uiHub{hub: h, url: "http://" + host, key: key}
}

// publish builds a signed package name:version whose one image
// (linux/amd64) carries a Debian 12 dpkg database (libc6, tzdata) and
// npm left-pad at leftPad, with its SBOMs, and pushes it to acme as
// alice (with o, if given). It returns the package as the hub recorded
// it (nil with NoSubmit).
func (u *uiHub) publish(t *testing.T, name, version, leftPad string, o ...hubclient.PushOptions) *hub.Package {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	push := func(mt string, b []byte) ocispec.Descriptor { return hubtest.Push(t, s, mt, b) }
	tarball := sbomtest.TarLayer(t, []sbomtest.File{
		{Name: "etc/os-release", Data: []byte("ID=debian\nVERSION_ID=\"12\"\n")},
		{Name: "var/lib/dpkg/status", Data: []byte("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u7\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n")},
		{Name: "app/node_modules/left-pad/package.json", Data: []byte(`{"name":"left-pad","version":"` + leftPad + `"}`)},
	})
	layer := push(ocispec.MediaTypeImageLayerGzip, sbomtest.Gzip(t, tarball))
	cfgJSON, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarball)}}})
	manJSON, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: push(ocispec.MediaTypeImageConfig, cfgJSON), Layers: []ocispec.Descriptor{layer}})
	img := push(ocispec.MediaTypeImageManifest, manJSON)
	ref := "registry.example/acme/" + name + ":" + version
	d := &bundle.Description{
		Name: name, Version: version, Description: "the " + name + " package",
		Spec:   &v1alpha1.Package{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.Metadata{Name: name, Version: version}},
		Images: []bundle.Image{{Ref: ref, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size, Platforms: []string{"linux/amd64"}}},
		Charts: []bundle.Chart{{Name: "web", Chart: "web", Version: "0.1.0", AppVersion: version, Digest: digest.FromString("chart"), Size: 5}},
	}
	sbomLayers, entries, err := sbom.Layers(ctx, s, []sbom.Image{{Ref: ref, Descriptor: img}}, d, sbom.LayersOptions{Options: sbom.Options{TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	d.SBOMs = entries
	img.Annotations = map[string]string{bundle.AnnotationRefName: ref}
	layers := append([]bundle.Layer{{MediaType: bundle.MediaTypeChart, Data: []byte("chart"), Title: "web"}}, sbomLayers...)
	out := hubtest.WriteArchive(t, s, d, []ocispec.Descriptor{img}, layers, t.TempDir(), u.key)
	host := strings.TrimPrefix(u.url, "http://")
	anon, err := hubclient.New(host, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(ctx, "alice", uiPassword, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := hubclient.New(host, hubclient.Options{Username: "alice", Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	o = append(o, hubclient.PushOptions{})
	res, err := alice.Push(ctx, out, "acme", o[0])
	if err != nil {
		t.Fatalf("push %s:%s: %v", name, version, err)
	}
	return res.Package
}

// auditHas reports whether the audit log has an entry of action by
// actor on target.
func auditHas(t *testing.T, h *hub.Hub, actor, action, target string) bool {
	t.Helper()
	es, err := h.Store().AuditLog(context.Background(), hub.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Actor == actor && e.Action == action && e.Target == target {
			return true
		}
	}
	return false
}
