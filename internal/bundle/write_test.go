package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
)

// TestWriteByteIdentical checks that every copy path (hashed from memory,
// hashed from files, kernel copy of trusted files) writes exactly the tar
// stream archive/tar writes for the same members.
func TestWriteByteIdentical(t *testing.T) {
	ctx := context.Background()
	// Layers of odd sizes, one larger than a progress chunk.
	p := buildPackage(t, buildOptions{layers: 3, layerSize: progressEvery + 1001})
	dir := t.TempDir()
	layout, err := orasoci.New(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if err := oras.CopyGraph(ctx, p.store, layout, p.root, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatal(err)
	}
	all := func(digest.Digest) bool { return true }
	cases := []struct {
		name string
		src  content.ReadOnlyStorage
		opts WriteOptions
	}{
		{"memory", p.store, WriteOptions{}},
		{"layout", layout, WriteOptions{}},
		{"layout-trusted", layout, WriteOptions{Trusted: all}},
		{"trusted-digest", layout, WriteOptions{Trusted: all, Digest: true}},
	}
	var want []byte
	for _, c := range cases {
		out := filepath.Join(dir, c.name+".skiff")
		res, err := Write(ctx, c.src, p.root, out, c.opts)
		if err != nil {
			t.Fatalf("%s: Write: %v", c.name, err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = tarOf(t, readMembers(t, out))
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the archive (%d bytes) differs from archive/tar's (%d bytes)", c.name, len(got), len(want))
		}
		if res.Bytes != int64(len(got)) {
			t.Errorf("%s: Bytes = %d, the file has %d", c.name, res.Bytes, len(got))
		}
		if wantDigest := digest.FromBytes(got); c.opts.Digest != (res.Digest == wantDigest) || (!c.opts.Digest && res.Digest != "") {
			t.Errorf("%s: Digest = %q with Digest option %v, want %s only when asked", c.name, res.Digest, c.opts.Digest, wantDigest)
		}
	}
}

// TestWriteTrustedChecksSize checks that a trusted blob whose stored size
// differs from its descriptor is refused.
func TestWriteTrustedChecksSize(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	dir := t.TempDir()
	layout, err := orasoci.New(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if err := oras.CopyGraph(ctx, p.store, layout, p.root, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatal(err)
	}
	raw, err := content.FetchAll(ctx, p.store, p.images[0])
	if err != nil {
		t.Fatal(err)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "layout", "blobs", "sha256", man.Layers[0].Digest.Encoded())
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.skiff")
	_, err = Write(ctx, layout, p.root, out, WriteOptions{Trusted: func(digest.Digest) bool { return true }})
	if !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("Write of a truncated trusted blob: error %v, want ErrSizeMismatch", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("a failed Write left the archive")
	}
}

// tarOf writes members with archive/tar and the archive's fixed headers.
func tarOf(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		if err := tw.WriteHeader(header(m.hdr.Name, int64(len(m.data)))); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
