package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	dir := t.TempDir()
	out := filepath.Join(dir, "demo.skiff")
	var events []Event
	wres, err := Write(ctx, p.store, p.root, out, WriteOptions{Digest: true, Progress: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	// 2 images: manifest+config+2 layers; index+2×(manifest+config+layer);
	// metadata: root, manifest, config, 3 layers.
	if want := 4 + 7 + 6; wres.Blobs != want {
		t.Errorf("Blobs = %d, want %d", wres.Blobs, want)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != wres.Bytes || fi.Mode().Perm() != 0o644 {
		t.Errorf("stat %s = %v, %v; want %d bytes, mode 0644", out, fi, err, wres.Bytes)
	}
	if done := countEvents(events, EventBlobDone); done != wres.Blobs {
		t.Errorf("EventBlobDone events = %d, want %d", done, wres.Blobs)
	}
	b, _ := os.ReadFile(out)
	if got := digest.FromBytes(b); got != wres.Digest {
		t.Errorf("Digest = %s, want %s", wres.Digest, got)
	}

	a, err := Open(out)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer a.Close()
	if a.Root().Digest != p.root.Digest || a.Root().Annotations[AnnotationRefName] != "demo:1.0.0" {
		t.Errorf("Root = %+v, want %s with ref demo:1.0.0", a.Root(), p.root.Digest)
	}
	var refs []string
	for _, img := range a.Images() {
		refs = append(refs, img.Annotations[AnnotationRefName])
	}
	if want := []string{"docker.io/library/nginx:1.27", "ghcr.io/example/app:v1"}; !slices.Equal(refs, want) {
		t.Errorf("Images refs = %v, want %v", refs, want)
	}
	d, err := a.Description(ctx)
	if err != nil {
		t.Fatalf("Description: %v", err)
	}
	if d.Name != "demo" || d.Version != "1.0.0" || len(d.Images) != 2 || d.Spec == nil || d.Spec.Metadata.Name != "demo" {
		t.Errorf("Description = %+v", d)
	}
	if !slices.Equal(d.Platforms, []string{"linux/amd64", "linux/arm64"}) || d.Files[0].Target != "a.txt" || !slices.Equal(d.Charts[0].Images, []string{"a", "b"}) {
		t.Errorf("Description lists not sorted: %v %v %v", d.Platforms, d.Files, d.Charts[0].Images)
	}
	rc, ld, err := a.Layer(ctx, MediaTypeChart, "web")
	if err != nil {
		t.Fatalf("Layer: %v", err)
	}
	got, err := content.ReadAll(rc, ld)
	rc.Close()
	if err != nil || string(got) != "chart-archive" {
		t.Errorf("chart layer = %q, %v", got, err)
	}
	if _, _, err := a.Layer(ctx, MediaTypeChart, "nope"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("Layer(nope) error = %v, want ErrNotFound", err)
	}
	if sigs, err := a.Signatures(ctx); err != nil || len(sigs) != 0 {
		t.Errorf("Signatures = %v, %v; want none", sigs, err)
	}
	// The archive is an oras storage: copy every image out of it.
	dst := memory.New()
	for _, img := range a.Images() {
		if err := oras.CopyGraph(ctx, a, dst, img, oras.DefaultCopyGraphOptions); err != nil {
			t.Fatalf("CopyGraph %s: %v", img.Digest, err)
		}
	}

	events = nil
	vres, err := Verify(ctx, out, VerifyOptions{Progress: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if done := countEvents(events, EventBlobDone); done != vres.Blobs {
		t.Errorf("Verify EventBlobDone events = %d, want %d", done, vres.Blobs)
	}
	if vres.Blobs != wres.Blobs || vres.Bytes != wres.Bytes || vres.Root.Digest != p.root.Digest {
		t.Errorf("Verify = %+v, want %d blobs, %d bytes", vres, wres.Blobs, wres.Bytes)
	}
	if _, err := verifyBytes(t, out, VerifyOptions{}); err != nil {
		t.Errorf("VerifyReader: %v", err)
	}
}

func countEvents(es []Event, k EventKind) int {
	n := 0
	for _, e := range es {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestFixedHeaders(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	ms := readMembers(t, out)
	if ms[0].hdr.Name != "oci-layout" || ms[len(ms)-1].hdr.Name != "index.json" {
		t.Fatalf("first and last members = %s, %s", ms[0].hdr.Name, ms[len(ms)-1].hdr.Name)
	}
	if string(ms[0].data) != layoutJSON {
		t.Errorf("oci-layout = %s", ms[0].data)
	}
	// Blobs: the image blobs sorted by digest, then the package's own.
	var prev string
	runs := 1
	for _, m := range ms {
		h := m.hdr
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("member %s header = %+v", h.Name, h)
		}
		if strings.HasPrefix(h.Name, blobPrefix) {
			if h.Name <= prev {
				runs++
			}
			prev = h.Name
			if d := digest.FromBytes(m.data); blobName(d) != h.Name {
				t.Errorf("member %s holds %s", h.Name, d)
			}
		}
	}
	if runs > 2 {
		t.Errorf("blobs are in %d sorted runs, want the image blobs then the package's own", runs)
	}
}

func TestDeterministic(t *testing.T) {
	var files [][]byte
	for range 2 {
		p := buildPackage(t, buildOptions{})
		b, err := os.ReadFile(writePackage(t, p, t.TempDir(), WriteOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two builds of the same package differ")
	}
}

func TestDescriptionMarshalDoesNotModify(t *testing.T) {
	d := &Description{Name: "x", Version: "1", Platforms: []string{"b", "a"}, Delta: &Delta{Omitted: []digest.Digest{"sha256:b", "sha256:a"}}}
	if _, err := d.Marshal(); err != nil {
		t.Fatal(err)
	}
	if d.Platforms[0] != "b" || d.Delta.Omitted[0] != "sha256:b" {
		t.Errorf("Marshal modified its receiver: %v %v", d.Platforms, d.Delta.Omitted)
	}
}

// blobOffset returns the offset and size of blob d in the archive at path.
func blobOffset(t *testing.T, path string, d digest.Digest) section {
	t.Helper()
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s, ok := a.blobs[d]
	if !ok {
		t.Fatalf("%s not in archive", d)
	}
	return s
}

func TestTamperedBlob(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	out := writePackage(t, p, t.TempDir(), WriteOptions{})
	succ, err := content.Successors(ctx, p.store, p.images[0])
	if err != nil {
		t.Fatal(err)
	}
	target := succ[len(succ)-1] // the last layer
	s := blobOffset(t, out, target.Digest)
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var bb [1]byte
	f.ReadAt(bb[:], s.off+10)
	bb[0] ^= 0xff
	f.WriteAt(bb[:], s.off+10)
	f.Close()

	_, err = Verify(ctx, out, VerifyOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Verify error = %v, want ErrDigestMismatch", err)
	}
	if want := "blob " + string(target.Digest) + " is corrupt"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "copy it again") {
		t.Errorf("Verify error = %q, want it to contain %q and the fix", err, want)
	}
	a, err := Open(out) // Open reads headers only: it succeeds
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := content.FetchAll(ctx, a, target); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Fetch error = %v, want ErrDigestMismatch", err)
	}
}

func TestTruncated(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{layerSize: 2000}), t.TempDir(), WriteOptions{})
	full, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	n := len(full)
	for _, cut := range []int{100, 512, 700, 1024 + 100, n / 2, n/2 + 7, n - 1024, n - 512, n - 1} {
		path := filepath.Join(t.TempDir(), "cut.skiff")
		if err := os.WriteFile(path, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d of %d: Open error = %v, want ErrTruncated", cut, n, err)
		} else if !strings.Contains(err.Error(), "at member ") || !strings.Contains(err.Error(), "skiff join") {
			t.Errorf("cut at %d: error %q does not name the member and the fix", cut, err)
		}
		if _, err := Verify(context.Background(), path, VerifyOptions{}); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d of %d: Verify error = %v, want ErrTruncated", cut, n, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.skiff")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrNotPackage) {
		t.Errorf("empty file: Open error = %v, want ErrNotPackage", err)
	}
}

func TestUnsafeMembers(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	good := readMembers(t, out)
	blob := good[2]
	reg := func(name string) member { return member{header(name, 1), []byte("x")} }
	tests := []struct {
		name  string
		extra []member // inserted after the first blob
		want  error
		atEnd bool // appended instead
	}{
		{"absolute", []member{reg("/etc/passwd")}, ErrUnsafePath, false},
		{"dotdot", []member{reg("../evil")}, ErrUnsafePath, false},
		{"dotdot inside", []member{reg("blobs/../../evil")}, ErrUnsafePath, false},
		{"unexpected name", []member{reg("README")}, ErrUnsafePath, false},
		{"upper-case hex", []member{reg(blobPrefix + strings.ToUpper(blob.hdr.Name[len(blobPrefix):]))}, ErrUnsafePath, false},
		{"symlink", []member{{&tar.Header{Typeflag: tar.TypeSymlink, Name: blob.hdr.Name, Linkname: "/etc/passwd"}, nil}}, ErrUnsafePath, false},
		{"hardlink", []member{{&tar.Header{Typeflag: tar.TypeLink, Name: blob.hdr.Name, Linkname: "index.json"}, nil}}, ErrUnsafePath, false},
		{"device", []member{{&tar.Header{Typeflag: tar.TypeChar, Name: blob.hdr.Name, Devmajor: 1, Devminor: 3}, nil}}, ErrUnsafePath, false},
		{"directory", []member{{&tar.Header{Typeflag: tar.TypeDir, Name: "blobs/", Mode: 0o755}, nil}}, ErrUnsafePath, false},
		{"duplicate blob", []member{blob, blob}, ErrUnsafePath, false},
		{"duplicate index", []member{good[len(good)-1]}, ErrUnsafePath, true},
		{"duplicate oci-layout", []member{good[0]}, ErrUnsafePath, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := append(slices.Clone(good[:2]), tt.extra...)
			ms = append(ms, good[2:]...)
			if tt.atEnd {
				ms = append(slices.Clone(good), tt.extra...)
			}
			path := filepath.Join(t.TempDir(), "bad.skiff")
			writeMembers(t, path, ms)
			_, err := Open(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "member ") {
				t.Errorf("Open error %q does not name the member", err)
			}
			if _, err := verifyBytes(t, path, VerifyOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("VerifyReader error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBadStructure(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	good := readMembers(t, out)
	last := len(good) - 1
	blobs := good[1:last]
	// The layout before index.json moved to the end: index.json second,
	// blobs sorted by digest.
	legacy := append([]member{good[0], good[last]}, blobs...)
	slices.SortFunc(legacy[2:], func(a, b member) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })
	swapped := slices.Clone(legacy)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	with := func(ms ...[]member) []member { return slices.Concat(ms...) }
	tests := []struct {
		name string
		ms   []member
	}{
		{"index first", with(good[last:], good[:last])},
		{"no oci-layout", good[1:]},
		{"only oci-layout", good[:1]},
		{"no index", good[:last]},
		{"blob after index", with(good[:last-1], good[last:], good[last-1:last])},
		{"legacy layout, blobs out of order", swapped},
		{"bad oci-layout", with([]member{{header(memberLayout, 2), []byte("{}")}}, good[1:])},
		{"index not json", with(good[:last], []member{{header(memberIndex, 1), []byte("[")}})},
		{"no root", with(good[:last], []member{{header(memberIndex, 2), []byte("{}")}})},
	}
	path := filepath.Join(t.TempDir(), "legacy.skiff")
	writeMembers(t, path, legacy)
	if a, err := Open(path); err != nil {
		t.Errorf("Open(legacy layout): %v", err)
	} else {
		a.Close()
	}
	if _, err := verifyBytes(t, path, VerifyOptions{}); err != nil {
		t.Errorf("VerifyReader(legacy layout): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.skiff")
			writeMembers(t, path, tt.ms)
			if _, err := Open(path); !errors.Is(err, ErrNotPackage) {
				t.Errorf("Open error = %v, want ErrNotPackage", err)
			}
			if _, err := verifyBytes(t, path, VerifyOptions{}); !errors.Is(err, ErrNotPackage) {
				t.Errorf("VerifyReader error = %v, want ErrNotPackage", err)
			}
		})
	}
	notTar := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notTar, bytes.Repeat([]byte("not a tar "), 100), 0o644)
	if _, err := Open(notTar); !errors.Is(err, ErrNotPackage) {
		t.Errorf("Open(not a tar) error = %v, want ErrNotPackage", err)
	}
}

func TestSizeMismatch(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	ms := readMembers(t, out)
	// Claim the root is one byte larger in index.json.
	last := len(ms) - 1
	idx := strings.Replace(string(ms[last].data), `"size":`, `"size":1`, 1)
	ms[last] = member{header(memberIndex, int64(len(idx))), []byte(idx)}
	writeMembers(t, out, ms)
	if _, err := Verify(context.Background(), out, VerifyOptions{}); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("Verify error = %v, want ErrSizeMismatch", err)
	}
	if _, err := Open(out); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("Open error = %v, want ErrSizeMismatch", err)
	}
}

func TestMissingBlob(t *testing.T) {
	p := buildPackage(t, buildOptions{})
	out := writePackage(t, p, t.TempDir(), WriteOptions{})
	succ, err := content.Successors(context.Background(), p.store, p.images[0])
	if err != nil {
		t.Fatal(err)
	}
	gone := succ[1].Digest // the first layer
	var ms []member
	for _, m := range readMembers(t, out) {
		if m.hdr.Name != blobName(gone) {
			ms = append(ms, m)
		}
	}
	writeMembers(t, out, ms)
	res, err := Verify(context.Background(), out, VerifyOptions{Allow: func(digest.Digest) bool { return true }})
	if !errors.Is(err, ErrMissingBlob) {
		t.Fatalf("Verify error = %v, want ErrMissingBlob (a full archive omits nothing)", err)
	}
	if !strings.Contains(err.Error(), string(gone)) || !strings.Contains(err.Error(), string(p.images[0].Digest)) {
		t.Errorf("error %q does not name the blob and its manifest", err)
	}
	if !slices.Equal(res.Missing, []digest.Digest{gone}) {
		t.Errorf("Missing = %v, want [%s]", res.Missing, gone)
	}
}

func TestExtraneousBlob(t *testing.T) {
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	extra := []byte("stray")
	d := digest.FromBytes(extra)
	ms := readMembers(t, out)
	ms = append(ms, member{header(blobName(d), int64(len(extra))), extra})
	slices.SortStableFunc(ms[2:], func(a, b member) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })
	writeMembers(t, out, ms)
	res, err := Verify(context.Background(), out, VerifyOptions{})
	if !errors.Is(err, ErrExtraneousBlob) {
		t.Fatalf("Verify error = %v, want ErrExtraneousBlob", err)
	}
	if !slices.Equal(res.Extraneous, []digest.Digest{d}) {
		t.Errorf("Extraneous = %v, want [%s]", res.Extraneous, d)
	}
}

func TestDelta(t *testing.T) {
	ctx := context.Background()
	// The base holds the first image: omit its manifest, config and layers.
	base := buildPackage(t, buildOptions{})
	omitted := []digest.Digest{base.images[0].Digest}
	succ, err := content.Successors(ctx, base.store, base.images[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range succ {
		omitted = append(omitted, s.Digest)
	}
	p := buildPackage(t, buildOptions{delta: &Delta{Base: "sha256:" + strings.Repeat("0", 64), Omitted: omitted}})
	if p.root.Annotations[AnnotationDeltaBase] == "" {
		t.Errorf("delta root has no %s annotation", AnnotationDeltaBase)
	}
	omit := func(d digest.Digest) bool { return slices.Contains(omitted, d) }
	dir := t.TempDir()
	out := filepath.Join(dir, "delta.skiff")
	wres, err := Write(ctx, p.store, p.root, out, WriteOptions{Omit: omit})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Omitting the manifest omits its subgraph.
	if wres.Omitted != 1 {
		t.Errorf("Omitted = %d, want 1", wres.Omitted)
	}
	all := func(digest.Digest) bool { return true }
	tests := []struct {
		name    string
		allow   func(digest.Digest) bool
		wantErr error
	}{
		{"no base given", nil, ErrMissingBlob},
		{"base lacks it", func(digest.Digest) bool { return false }, ErrMissingBlob},
		{"base holds it", all, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Verify(ctx, out, VerifyOptions{Allow: tt.allow})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !slices.Equal(res.Omitted, []digest.Digest{p.images[0].Digest}) {
				t.Errorf("Omitted = %v, want [%s]", res.Omitted, p.images[0].Digest)
			}
		})
	}
	a, err := Open(out)
	if err != nil {
		t.Fatalf("Open(delta): %v", err)
	}
	defer a.Close()
	if _, err := a.Fetch(ctx, p.images[0]); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("Fetch(omitted) error = %v, want ErrNotFound", err)
	}

	// Omitting a blob the description does not list is a loss.
	other := p.images[1].Digest
	lossy := filepath.Join(dir, "lossy.skiff")
	if _, err := Write(ctx, p.store, p.root, lossy, WriteOptions{Omit: func(d digest.Digest) bool { return omit(d) || d == other }}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, lossy, VerifyOptions{Allow: all}); !errors.Is(err, ErrMissingBlob) || !strings.Contains(err.Error(), string(other)) {
		t.Errorf("Verify(lossy) error = %v, want ErrMissingBlob naming %s", err, other)
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	succ, err := content.Successors(ctx, p.store, p.images[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  content.ReadOnlyStorage
		want error
	}{
		{"layer missing", hiding{p.store, succ[1].Digest}, ErrMissingBlob},
		{"manifest missing", hiding{p.store, p.images[0].Digest}, ErrMissingBlob},
		{"corrupt blob", corrupting{p.store, succ[1].Digest}, ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "demo.skiff")
			if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Write(ctx, tt.src, p.root, out, WriteOptions{}); !errors.Is(err, tt.want) {
				t.Fatalf("Write error = %v, want %v", err, tt.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %v, want only demo.skiff", entries)
			}
			if b, _ := os.ReadFile(out); string(b) != "previous" {
				t.Errorf("the previous file was replaced")
			}
		})
	}
	// A cancelled context also leaves nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	dir := t.TempDir()
	if _, err := Write(cctx, p.store, p.root, filepath.Join(dir, "x"), WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(cancelled) error = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("directory holds %v after a cancelled write", entries)
	}
}

// corrupting serves one blob with its first byte flipped.
type corrupting struct {
	content.ReadOnlyStorage
	bad digest.Digest
}

func (c corrupting) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := c.ReadOnlyStorage.Fetch(ctx, d)
	if err != nil || d.Digest != c.bad {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[0] ^= 1
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestAddSignature(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	dir := t.TempDir()
	out := writePackage(t, p, dir, WriteOptions{})
	env1 := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"a","sig":"AAAA"}]}`)
	env2 := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"b","sig":"BBBB"}]}`)

	if err := AddSignature(ctx, out, env1); err != nil {
		t.Fatalf("AddSignature: %v", err)
	}
	once, _ := os.ReadFile(out)
	if err := AddSignature(ctx, out, env1); err != nil {
		t.Fatalf("AddSignature again: %v", err)
	}
	if twice, _ := os.ReadFile(out); !bytes.Equal(once, twice) {
		t.Errorf("adding the same envelope twice changed the archive")
	}
	if err := AddSignature(ctx, out, env2); err != nil {
		t.Fatalf("AddSignature(env2): %v", err)
	}
	if _, err := Verify(ctx, out, VerifyOptions{}); err != nil {
		t.Fatalf("Verify after signing: %v", err)
	}
	a, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Root().Digest != p.root.Digest {
		t.Errorf("signing changed the root: %s, want %s", a.Root().Digest, p.root.Digest)
	}
	sigs, err := a.Signatures(ctx)
	if err != nil {
		t.Fatalf("Signatures: %v", err)
	}
	var envs []string
	for _, s := range sigs {
		envs = append(envs, string(s.Envelope))
	}
	slices.Sort(envs)
	if !slices.Equal(envs, []string{string(env1), string(env2)}) {
		t.Errorf("Signatures envelopes = %q", envs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v, want only the archive", entries)
	}

	// Signing a damaged archive fails and leaves it as it was.
	s := blobOffset(t, out, p.images[0].Digest)
	f, _ := os.OpenFile(out, os.O_RDWR, 0)
	f.WriteAt([]byte{'X'}, s.off)
	f.Close()
	before, _ := os.ReadFile(out)
	if err := AddSignature(ctx, out, []byte(`{"other":1}`)); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("AddSignature(damaged) error = %v, want ErrDigestMismatch", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Errorf("a failed AddSignature changed the archive")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %v after a failed AddSignature", entries)
	}
}

func TestAssembleErrors(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	img := newImage(t, s, "example.com/a:1", 1, 1, 8)
	noRef := img
	noRef.Annotations = nil
	absent := img
	absent.Digest = digest.FromString("absent")
	tests := []struct {
		name   string
		d      *Description
		images []ocispec.Descriptor
		layers []Layer
		want   error
	}{
		{"no name", &Description{Version: "1"}, nil, nil, nil},
		{"image without ref", &Description{Name: "a", Version: "1"}, []ocispec.Descriptor{noRef}, nil, nil},
		{"image not in store", &Description{Name: "a", Version: "1"}, []ocispec.Descriptor{absent}, nil, ErrMissingBlob},
		{"layer not in store", &Description{Name: "a", Version: "1"}, nil, []Layer{{Desc: ocispec.Descriptor{MediaType: MediaTypeChart, Digest: absent.Digest, Size: 1}, Title: "x"}}, ErrMissingBlob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Assemble(ctx, s, tt.d, tt.images, tt.layers)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Assemble error = %v, want %v", err, tt.want)
			}
		})
	}
}
