package hubclient_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sign"
	"github.com/skiffhq/skiff/internal/vuln"
)

// makeSBOMArchive writes a signed package whose one image carries an
// SBOM listing npm left-pad at leftPad.
func makeSBOMArchive(t *testing.T, dir, name, version, leftPad string, key *sign.PrivateKey) string {
	t.Helper()
	s := memory.New()
	layer := hubtest.Push(t, s, ocispec.MediaTypeImageLayerGzip, []byte("layer of "+name+version))
	cfg := hubtest.PushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	img := hubtest.PushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer},
	})
	ref := "docker.io/library/" + name + ":1.0"
	img.Annotations = map[string]string{bundle.AnnotationRefName: ref}
	bom, _ := json.Marshal(sbom.BOM{BOMFormat: sbom.BOMFormat, SpecVersion: sbom.SpecVersion, Version: 1, Components: []sbom.Component{
		{Type: "library", Name: "left-pad", Version: leftPad, PURL: "pkg:npm/left-pad@" + leftPad},
	}})
	bomDesc := hubtest.Push(t, s, bundle.MediaTypeSBOM, bom)
	d := &bundle.Description{
		Name: name, Version: version,
		Spec:   &v1alpha1.Package{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.Metadata{Name: name, Version: version}},
		Images: []bundle.Image{{Ref: ref, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}},
		SBOMs:  []bundle.SBOM{{Image: ref, Platform: "linux/amd64", Digest: bomDesc.Digest}},
	}
	return hubtest.WriteArchive(t, s, d, []ocispec.Descriptor{img}, []bundle.Layer{{Desc: bomDesc, Title: sbom.Title(ref, "linux/amd64")}}, dir, key)
}

// importAdvisories replaces the database in dir with the advisories.
func importAdvisories(t *testing.T, dir string, advisories map[string]string) {
	t.Helper()
	src := t.TempDir()
	for name, data := range advisories {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vuln.Import(context.Background(), dir, src); err != nil {
		t.Fatal(err)
	}
}

const leftPadHigh = `{"id":"GHSA-test-0001","aliases":["CVE-2099-0001"],"summary":"left-pad pads wrong",
 "affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}],
 "database_specific":{"severity":"HIGH"}}`

const unrelated = `{"id":"GHSA-test-0099","affected":[{"package":{"ecosystem":"npm","name":"other"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}],"database_specific":{"severity":"CRITICAL"}}`

func gate(t *testing.T, p *hub.Package, name string) hub.GateResult {
	t.Helper()
	for _, g := range p.Gates {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("%s has no gate %s: %+v", p.Ref(), name, p.Gates)
	return hub.GateResult{}
}

func TestVulnGateAndRescan(t *testing.T) {
	dbDir := t.TempDir()
	importAdvisories(t, dbDir, map[string]string{"GHSA-test-0099.json": unrelated})
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policy, []byte("failOn: high\n"), 0o644)
	pol, err := vuln.LoadPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	// The policy can change between reviews (a hub would be restarted).
	vg := hub.Gate{Name: hub.GateVulnerabilities, Run: func(ctx context.Context, c *hub.Candidate) hub.GateResult {
		return hub.VulnGate(hub.VulnGateOptions{DBDir: dbDir, Policy: *pol}).Run(ctx, c)
	}}
	th := newTestHub(t, hub.Options{Gates: []hub.Gate{vg}})
	ctx := th.ctx
	dir := t.TempDir()
	alice, bob, carol, root := th.client(t, "alice"), th.client(t, "bob"), th.client(t, "carol"), th.client(t, "root")

	// Clean against today's advisories: pending, then approved.
	res, err := alice.Push(ctx, makeSBOMArchive(t, dir, "web", "1.0.0", "1.1.0", th.key), "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Package.Status != hub.StatusPending {
		t.Fatalf("status %s, gates %+v", res.Package.Status, res.Package.Gates)
	}
	if g := gate(t, res.Package, hub.GateVulnerabilities); !g.Passed || !strings.Contains(g.Message, "none at or above high") {
		t.Fatalf("vulnerability gate %+v", g)
	}
	if _, err := bob.Approve(ctx, "acme", "web", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := carol.Pull(ctx, "acme", "web", "1.0.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull before the update: %v", err)
	}

	// A new advisory: a vulnerable package pushed now is rejected with
	// the findings recorded.
	importAdvisories(t, dbDir, map[string]string{"GHSA-test-0001.json": leftPadHigh, "GHSA-test-0099.json": unrelated})
	res, err = alice.Push(ctx, makeSBOMArchive(t, dir, "web", "1.1.0", "1.1.0", th.key), "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := gate(t, res.Package, hub.GateVulnerabilities)
	if res.Package.Status != hub.StatusRejected || g.Passed || !strings.Contains(g.Message, "GHSA-test-0001") {
		t.Fatalf("vulnerable push: %s %+v", res.Package.Status, g)
	}
	var det hub.VulnDetails
	if err := json.Unmarshal(g.Details, &det); err != nil || len(det.Blocked) != 1 || det.Blocked[0].ID != "GHSA-test-0001" || det.FailOn != vuln.SeverityHigh {
		t.Fatalf("details %s: %v", g.Details, err)
	}
	// A fixed version passes.
	if res, err = alice.Push(ctx, makeSBOMArchive(t, dir, "web", "1.2.0", "1.3.0", th.key), "acme", hubclient.PushOptions{}); err != nil || res.Package.Status != hub.StatusPending {
		t.Fatalf("fixed push: %v %+v", err, res.Package)
	}

	// Rescan: only admins; the approved 1.0.0 is now blocked.
	if _, err := alice.Rescan(ctx, "", "", "", true); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("alice rescanning all: %v", err)
	}
	if _, err := bob.Rescan(ctx, "", "", "", true); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("bob (owner admin) rescanning all: %v", err)
	}
	results, err := root.Rescan(ctx, "", "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]string{}
	for _, r := range results {
		after[r.Package] = r.Before + ">" + r.After
	}
	if after["acme/web:1.0.0"] != "approved>blocked" || after["acme/web:1.2.0"] != "pending>pending" || len(after) != 2 {
		t.Fatalf("rescan: %v", after)
	}
	if _, err := carol.Pull(ctx, "acme", "web", "1.0.0", out, hubclient.PullOptions{}); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("pull of a blocked package: %v", err)
	}
	if got := rawGet(t, th, "/v2/acme/web/manifests/1.0.0", "carol", password); got != 404 {
		t.Fatalf("registry GET of a blocked package as a reader: %d", got)
	}
	p, err := bob.Package(ctx, "acme", "web", "1.0.0")
	if err != nil || p.Status != hub.StatusBlocked || gate(t, p, hub.GateVulnerabilities).Passed {
		t.Fatalf("show: %v %+v", err, p)
	}
	// Blocked versions stay immutable; submitting again changes nothing.
	if _, err := alice.Push(ctx, makeSBOMArchive(t, dir, "web", "1.0.0", "1.3.0", th.key), "acme", hubclient.PushOptions{}); err == nil {
		t.Fatal("pushed other content over a blocked version")
	}
	es, err := root.Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == hub.ActionRescan {
			n++
			if e.Target != "acme/web:1.0.0" || e.Actor != "root" || !strings.Contains(e.Details, `"after":"blocked"`) {
				t.Errorf("audit %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d rescan audit entries, want 1", n)
	}

	// An allow-list entry unblocks it on the next rescan of that package:
	// pending, and its approvals start over.
	os.WriteFile(policy, []byte("failOn: high\nallow:\n  - id: CVE-2099-0001\n    until: 2999-01-01\n    reason: test\n"), 0o644)
	pol2, _ := vuln.LoadPolicy(policy)
	*pol = *pol2
	results, err = bob.Rescan(ctx, "acme", "web", "1.0.0", false)
	if err != nil || len(results) != 1 || results[0].After != hub.StatusPending {
		t.Fatalf("rescan with an allow-list: %v %+v", err, results)
	}
	if p, _ := bob.Package(ctx, "acme", "web", "1.0.0"); len(p.Approvals) != 0 {
		t.Fatalf("approvals kept: %+v", p.Approvals)
	}
	if _, err := bob.Rescan(ctx, "acme", "web", "1.1.0", false); !errors.Is(err, hub.ErrConflict) {
		t.Fatalf("rescan of a rejected package: %v", err)
	}
	if rep, err := th.hub.Store().VerifyAudit(ctx); err != nil || !rep.OK {
		t.Fatalf("audit: %v", err)
	}
}

func TestExportImport(t *testing.T) {
	key, trust := hubtest.TrustedKey(t)
	a := newTestHub(t, hub.Options{TrustDir: trust})
	b := newTestHub(t, hub.Options{TrustDir: trust})
	ctx := a.ctx
	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "app", "1.0.0", 1, key)
	other := hubtest.Archive(t, dir, "tool", "2.0.0", 2, key)
	aAlice, aBob, aRoot := a.client(t, "alice"), a.client(t, "bob"), a.client(t, "root")
	pushAll(t, aAlice, "acme", archive, other)
	if _, err := aBob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	// tool stays pending on A: not exported.

	export := filepath.Join(dir, "export.tar")
	if _, err := aAlice.Export(ctx, export, hubclient.ExportOptions{}); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("alice exporting: %v", err)
	}
	m, err := aRoot.Export(ctx, export, hubclient.ExportOptions{Since: a.clock.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Packages) != 1 || m.Packages[0].Ref() != "acme/app:1.0.0" {
		t.Fatalf("exported %+v", m.Packages)
	}
	if m2, err := aRoot.Export(ctx, filepath.Join(dir, "empty.tar"), hubclient.ExportOptions{Since: a.clock.Now().Add(time.Hour)}); err != nil || len(m2.Packages) != 0 {
		t.Fatalf("export since the future: %v %+v", err, m2)
	}

	bRoot, bBob, bCarol := b.client(t, "root"), b.client(t, "bob"), b.client(t, "carol")
	if _, err := bBob.Import(ctx, export); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("bob importing: %v", err)
	}
	res, err := bRoot.Import(ctx, export)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 1 || res.Packages[0].Status != hub.StatusPending {
		t.Fatalf("import: %+v", res)
	}
	// Approvals did not travel; B's own reviewers approve.
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := bCarol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("pull before approval on B: %v", err)
	}
	if _, err := bBob.Approve(ctx, "acme", "app", "1.0.0", "mirrored"); err != nil {
		t.Fatal(err)
	}
	if _, err := bCarol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(want, got) {
		t.Fatal("the archive pulled from B differs from the one pushed to A")
	}
	// Importing again is a no-op.
	if res, err := bRoot.Import(ctx, export); err != nil || res.Packages[0].Status != hub.StatusApproved {
		t.Fatalf("re-import: %v %+v", err, res)
	}

	// A hub that does not trust the publisher rejects the package.
	c := newTestHub(t, hub.Options{})
	if res, err := c.client(t, "root").Import(ctx, export); err != nil || res.Packages[0].Status != hub.StatusRejected || gate(t, mustPackage(t, c, "acme", "app", "1.0.0"), hub.GateSignature).Passed {
		t.Fatalf("import into an untrusting hub: %v %+v", err, res)
	}

	// A tampered entry: refused, nothing stored.
	d := newTestHub(t, hub.Options{TrustDir: trust})
	tampered := filepath.Join(dir, "tampered.tar")
	tamperExport(t, export, tampered)
	_, err = d.client(t, "root").Import(ctx, tampered)
	if !errors.Is(err, hub.ErrInvalid) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("tampered import: %v", err)
	}
	if ps, _ := d.hub.Store().Packages(ctx, hub.PackageQuery{}); len(ps) != 0 {
		t.Fatalf("a tampered import stored %+v", ps)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "storage", "docker", "registry", "v2", "repositories")); len(ents) != 0 {
		t.Fatalf("a tampered import stored repositories %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "tmp")); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// TestExportDeduplicatesAndAgainst: an export holds each blob once
// however many packages share it; against the receiving hub's inventory
// it carries only what that hub lacks, and a hub lacking a left-out
// blob refuses the import, naming it, and stores nothing.
func TestExportDeduplicatesAndAgainst(t *testing.T) {
	key, trust := hubtest.TrustedKey(t)
	a := newTestHub(t, hub.Options{TrustDir: trust})
	b := newTestHub(t, hub.Options{TrustDir: trust})
	ctx := a.ctx
	dir := t.TempDir()
	// 1.0.0 and 1.1.0 share their image (same layers); tool does not.
	v1 := hubtest.Archive(t, dir, "app", "1.0.0", 1, key)
	v2 := hubtest.Archive(t, dir, "app", "1.1.0", 1, key)
	tool := hubtest.Archive(t, dir, "tool", "2.0.0", 2, key)
	pushAll(t, a.client(t, "alice"), "acme", v1, v2, tool)
	for _, v := range [][2]string{{"app", "1.0.0"}, {"app", "1.1.0"}, {"tool", "2.0.0"}} {
		if _, err := a.client(t, "bob").Approve(ctx, "acme", v[0], v[1], ""); err != nil {
			t.Fatal(err)
		}
	}
	aRoot := a.client(t, "root")

	full := filepath.Join(dir, "full.tar")
	m, err := aRoot.Export(ctx, full, hubclient.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sumPackages, sumBlobs int64
	for _, e := range m.Packages {
		sumPackages += e.Size
	}
	seen := map[string]bool{}
	for _, bl := range m.Blobs {
		if seen[bl.Digest] {
			t.Fatalf("blob %s listed twice", bl.Digest)
		}
		seen[bl.Digest] = true
		sumBlobs += bl.Size
	}
	if len(m.Packages) != 3 || len(m.Omitted) != 0 || sumBlobs >= sumPackages-2*2048 {
		t.Fatalf("full export: %d packages, %d omitted, %d bytes of blobs for %d bytes of packages: the shared layers are not stored once", len(m.Packages), len(m.Omitted), sumBlobs, sumPackages)
	}
	if n := countMembers(t, full, "blobs/"); n != len(m.Blobs) {
		t.Fatalf("%d blob members, the manifest lists %d", n, len(m.Blobs))
	}

	// B holds 1.0.0 (pushed there directly); its inventory lists it.
	if _, err := b.client(t, "alice").Push(ctx, v1, "acme", hubclient.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	bRoot := b.client(t, "root")
	if _, err := b.client(t, "alice").Inventory(ctx); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("alice reading the inventory: %v", err)
	}
	inv, err := bRoot.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	invFile := filepath.Join(dir, "inv.json")
	data, _ := json.Marshal(inv)
	os.WriteFile(invFile, data, 0o600)
	against, err := hubclient.ReadInventory(invFile)
	if err != nil || len(against.Blobs) < 5 {
		t.Fatalf("inventory: %v %+v", err, against)
	}
	delta := filepath.Join(dir, "delta.tar")
	dm, err := aRoot.Export(ctx, delta, hubclient.ExportOptions{Against: against})
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for _, d := range against.Blobs {
		held[d] = true
	}
	var carried int64
	for _, bl := range dm.Blobs {
		if held[bl.Digest] {
			t.Fatalf("the export against B carries %s, which B holds", bl.Digest)
		}
		carried += bl.Size
	}
	if len(dm.Omitted) != len(against.Blobs) || carried >= sumBlobs {
		t.Fatalf("against B: %d omitted (B holds %d), %d bytes carried of %d", len(dm.Omitted), len(against.Blobs), carried, sumBlobs)
	}

	// An empty hub lacks what the export left out: refused, naming a
	// blob, nothing stored.
	c := newTestHub(t, hub.Options{TrustDir: trust})
	_, err = c.client(t, "root").Import(ctx, delta)
	if !errors.Is(err, hub.ErrInvalid) || !strings.Contains(err.Error(), dm.Omitted[0].Digest) || !strings.Contains(err.Error(), "skiff hub inventory") {
		t.Fatalf("importing a delta into a hub lacking its base: %v", err)
	}
	if ps, _ := c.hub.Store().Packages(ctx, hub.PackageQuery{}); len(ps) != 0 {
		t.Fatalf("a refused import stored %+v", ps)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.root, "tmp")); len(ents) != 0 {
		t.Fatalf("temporary files left: %v", ents)
	}

	// Altered exports, each with a consistent manifest: refused, nothing
	// stored.
	layer := ""
	for _, bl := range m.Blobs {
		if bl.MediaType == ocispec.MediaTypeImageLayerGzip {
			layer = bl.Digest
		}
	}
	for name, c := range map[string]struct {
		edit func(*hub.ExportManifest, map[string][]byte)
		msg  string
	}{
		"a blob no package needs": {func(m *hub.ExportManifest, blobs map[string][]byte) {
			extra := []byte("extra")
			d := "sha256:" + fmt.Sprintf("%x", sha256.Sum256(extra))
			m.Blobs = append(m.Blobs, hub.ExportBlob{MediaType: "application/octet-stream", Digest: d, Size: int64(len(extra))})
			blobs[d] = extra
		}, "belongs to none of the packages"},
		"a layer left out and not listed": {func(m *hub.ExportManifest, blobs map[string][]byte) {
			m.Blobs = slices.DeleteFunc(m.Blobs, func(b hub.ExportBlob) bool { return b.Digest == layer })
			delete(blobs, layer)
		}, "neither in the export nor listed as omitted"},
	} {
		altered := filepath.Join(dir, "altered.tar")
		editExport(t, full, altered, c.edit)
		_, err := c2(t, trust).client(t, "root").Import(ctx, altered)
		if !errors.Is(err, hub.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", name, err, c.msg)
		}
	}

	// B imports it: its own reviewers approve; the pulled archive is
	// the one pushed to A.
	res, err := bRoot.Import(ctx, delta)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, p := range res.Packages {
		status[p.Package] = p.Status
	}
	if status["acme/app:1.1.0"] != hub.StatusPending || status["acme/tool:2.0.0"] != hub.StatusPending || status["acme/app:1.0.0"] != hub.StatusPending {
		t.Fatalf("import against B: %+v", res.Packages)
	}
	for _, v := range [][2]string{{"app", "1.1.0"}, {"tool", "2.0.0"}} {
		if _, err := b.client(t, "bob").Approve(ctx, "acme", v[0], v[1], "mirrored"); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"1.1.0": v2} {
		out := filepath.Join(dir, "pulled-"+name+".skiff")
		if _, err := b.client(t, "carol").Pull(ctx, "acme", "app", name, out, hubclient.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		w, _ := os.ReadFile(want)
		g, _ := os.ReadFile(out)
		if !bytes.Equal(w, g) {
			t.Fatalf("app %s pulled from B differs from the archive pushed to A", name)
		}
	}
	if rep, err := hub.Check(ctx, hub.CheckOptions{Root: b.root}); err != nil {
		t.Fatalf("check of B after the import: %v %+v", err, rep)
	}
}

// c2 is a fresh hub trusting trust that must store nothing.
func c2(t *testing.T, trust string) *testHub {
	th := newTestHub(t, hub.Options{TrustDir: trust})
	t.Cleanup(func() {
		if ps, _ := th.hub.Store().Packages(th.ctx, hub.PackageQuery{}); len(ps) != 0 {
			t.Errorf("a refused import stored %+v", ps)
		}
	})
	return th
}

// editExport rewrites an export: edit changes its manifest and blobs
// (by digest); the blob members are written in the manifest's order.
func editExport(t *testing.T, in, out string, edit func(*hub.ExportManifest, map[string][]byte)) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := map[string][]byte{}
	m, err := hub.ReadExport(f, nil, func(b hub.ExportBlob, r io.Reader) error {
		data, err := io.ReadAll(r)
		blobs[b.Digest] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	edit(m, blobs)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mb, _ := json.Marshal(m)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: hub.ExportManifestName, Size: int64(len(mb)), Mode: 0o644})
	tw.Write(mb)
	for _, b := range m.Blobs {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: hub.ExportBlobPath(b.Digest), Size: int64(len(blobs[b.Digest])), Mode: 0o644})
		tw.Write(blobs[b.Digest])
	}
	tw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countMembers counts the members of a tar file whose name has prefix.
func countMembers(t *testing.T, file, prefix string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, prefix) {
			n++
		}
	}
}

func mustPackage(t *testing.T, th *testHub, owner, name, version string) *hub.Package {
	t.Helper()
	p, err := th.hub.Store().Package(th.ctx, owner, name, version)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tamperExport copies an export, flipping one byte in the middle of each
// blob.
func tamperExport(t *testing.T, in, out string) {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	data = rewriteTar(t, data, func(m member) []member {
		if strings.HasPrefix(m.h.Name, "blobs/") {
			m.b[len(m.b)/2] ^= 0xff
		}
		return []member{m}
	})
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBackupRestoreCheck(t *testing.T) {
	th := newTestHub(t, hub.Options{})
	ctx := th.ctx
	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "app", "1.0.0", 1, th.key)
	alice, bob := th.client(t, "alice"), th.client(t, "bob")
	if _, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	if rep, err := hub.Check(ctx, hub.CheckOptions{Root: th.root}); err != nil || rep.Packages != 1 || rep.Blobs < 5 {
		t.Fatalf("check of the live hub: %v %+v", err, rep)
	}

	// Back up while the hub runs.
	var buf bytes.Buffer
	m, err := hub.Backup(ctx, &buf, hub.BackupOptions{Root: th.root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Backup(ctx, io.Discard, hub.BackupOptions{Root: th.root, DatabaseURL: "postgres://x@127.0.0.1/db"}); !errors.Is(err, hub.ErrPostgres) {
		t.Fatalf("backup of a PostgreSQL hub: %v", err)
	}
	backup := buf.Bytes()

	// Refused: a non-empty target, a corrupted member, path traversal.
	notEmpty := t.TempDir()
	os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644)
	if _, err := hub.Restore(ctx, bytes.NewReader(backup), hub.RestoreOptions{Root: notEmpty}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	base := t.TempDir()
	for name, data := range map[string][]byte{
		"corrupt":   rewriteTar(t, backup, corruptBlob(m)),
		"traversal": rewriteTar(t, backup, addMember("storage/../../evil")),
		"absolute":  rewriteTar(t, backup, addMember("/tmp/evil")),
		"outside":   rewriteTar(t, backup, addMember("evil")),
		"truncated": backup[:len(backup)/2],
	} {
		target := filepath.Join(base, name)
		_, err := hub.Restore(ctx, bytes.NewReader(data), hub.RestoreOptions{Root: target})
		if !errors.Is(err, hub.ErrBadBackup) {
			t.Errorf("%s backup restored: %v", name, err)
		}
		for _, p := range []string{target, target + ".tmp", filepath.Join(base, "evil"), filepath.Join(filepath.Dir(base), "evil")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s backup left %s", name, p)
			}
		}
	}

	// Restore, check, serve: the same package, the audit verifies.
	restored := filepath.Join(base, "hub")
	if _, err := hub.Restore(ctx, bytes.NewReader(backup), hub.RestoreOptions{Root: restored}); err != nil {
		t.Fatal(err)
	}
	if rep, err := hub.Check(ctx, hub.CheckOptions{Root: restored}); err != nil || rep.Packages != 1 || !rep.Audit.OK {
		t.Fatalf("check of the restored hub: %v %+v", err, rep)
	}
	h2, err := hub.New(ctx, hub.Options{Root: restored, TrustDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h2)
	defer func() { srv.Close(); h2.Close() }()
	th2 := &testHub{hub: h2, host: strings.TrimPrefix(srv.URL, "http://"), root: restored, clock: th.clock, ctx: ctx}
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := th2.client(t, "carol").Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull from the restored hub: %v", err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(want, got) {
		t.Fatal("the archive pulled from the restored hub differs")
	}
	if rep, err := th2.client(t, "root").VerifyAudit(ctx); err != nil || !rep.OK {
		t.Fatalf("audit of the restored hub: %v %+v", err, rep)
	}

	// Check finds a corrupted blob and a missing one.
	var layer string
	for _, f := range m.Files {
		if strings.HasSuffix(f.Path, "/data") && f.Size == 2048 {
			layer = filepath.Join(restored, f.Path)
			break
		}
	}
	if layer == "" {
		t.Fatal("no layer in the backup")
	}
	os.WriteFile(layer, []byte("corrupt"), 0o600)
	rep, err := hub.Check(ctx, hub.CheckOptions{Root: restored})
	if !errors.Is(err, hub.ErrInconsistent) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "corrupt") {
		t.Fatalf("check after corrupting a blob: %v %+v", err, rep)
	}
	os.Remove(layer)
	if rep, err := hub.Check(ctx, hub.CheckOptions{Root: restored}); err == nil || !strings.Contains(rep.Problems[0], "missing") {
		t.Fatalf("check after deleting a blob: %v %+v", err, rep)
	}
}

// member is a tar member.
type member struct {
	h *tar.Header
	b []byte
}

// rewriteTar replaces each member of a tar with what f returns.
func rewriteTar(t *testing.T, data []byte, f func(member) []member) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		for _, m := range f(member{hdr, b}) {
			m.h.Size = int64(len(m.b))
			tw.WriteHeader(m.h)
			tw.Write(m.b)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// addMember adds a member called name before the manifest.
func addMember(name string) func(member) []member {
	return func(m member) []member {
		if m.h.Name != hub.BackupManifestName {
			return []member{m}
		}
		return []member{{&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, []byte("evil")}, m}
	}
}

// corruptBlob flips a byte of the first blob data member.
func corruptBlob(man *hub.BackupManifest) func(member) []member {
	first := ""
	for _, f := range man.Files {
		if strings.HasSuffix(f.Path, "/data") {
			first = f.Path
			break
		}
	}
	return func(m member) []member {
		if m.h.Name == first {
			m.b[0] ^= 0xff
		}
		return []member{m}
	}
}
