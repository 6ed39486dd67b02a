package bundle

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
)

// fuzzSeeds returns small archives: a valid one, a signed one, and
// damaged variants.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	dir := f.TempDir()
	out := writePackage(f, buildPackage(f, buildOptions{layerSize: 16, layers: 1}), dir, WriteOptions{})
	valid, err := os.ReadFile(out)
	if err != nil {
		f.Fatal(err)
	}
	if err := AddSignature(context.Background(), out, []byte(`{"payloadType":"x","payload":"","signatures":[]}`)); err != nil {
		f.Fatal(err)
	}
	signed, err := os.ReadFile(out)
	if err != nil {
		f.Fatal(err)
	}
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 1
	return [][]byte{valid, signed, flipped, valid[:len(valid)/3], valid[:1536], nil}
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// In memory: the same reader as Open, without a file per input.
		a, err := open(memFile{bytes.NewReader(b)}, "fuzz.skiff")
		if err != nil {
			return
		}
		defer a.Close()
		ctx := context.Background()
		a.Description(ctx)
		a.Signatures(ctx)
		for _, l := range a.Layers() {
			if rc, err := a.Fetch(ctx, l); err == nil {
				io.Copy(io.Discard, rc)
				rc.Close()
			}
		}
		for _, img := range a.Images() {
			if img.Size <= int64(len(b)) {
				content.FetchAll(ctx, a, img)
			}
		}
	})
}

// memFile is an archive held in memory.
type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// smallSeeds returns the smallest archives VerifyReader accepts: a
// package with no image and one layer, the same with one one-layer image,
// and damaged and signed variants (a few KB each, against ~25 KB for
// fuzzSeeds). Every input that reaches new code is minimized before it
// counts, and the executions spent minimizing are reported only when it
// ends (up to a minute each): large seeds stall the reported count.
func smallSeeds(f testing.TB) [][]byte {
	f.Helper()
	ctx := context.Background()
	var out [][]byte
	for _, withImage := range []bool{false, true} {
		s := memory.New()
		d := &Description{Name: "p", Version: "1"}
		var images []ocispec.Descriptor
		if withImage {
			img := newImage(f, s, "r/i:1", 1, 1, 1)
			images = append(images, img)
			d.Images = []Image{{Ref: "r/i:1", Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}}
		}
		root, err := Assemble(ctx, s, d, images, []Layer{{MediaType: MediaTypeFiles, Data: []byte("f"), Title: "f"}})
		if err != nil {
			f.Fatal(err)
		}
		file := filepath.Join(f.TempDir(), "p.skiff")
		if _, err := Write(ctx, s, root, file, WriteOptions{}); err != nil {
			f.Fatal(err)
		}
		valid, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, valid)
		if !withImage {
			if err := AddSignature(ctx, file, []byte(`{"payloadType":"x","payload":"","signatures":[]}`)); err != nil {
				f.Fatal(err)
			}
			signed, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			flipped := bytes.Clone(valid)
			flipped[len(flipped)/2] ^= 1
			out = append(out, signed, flipped, valid[:len(valid)/2])
		}
	}
	return out
}

func TestSmallSeedsVerify(t *testing.T) {
	allow := func(digest.Digest) bool { return true }
	for i, s := range smallSeeds(t) {
		_, err := VerifyReader(context.Background(), bytes.NewReader(s), VerifyOptions{Allow: allow})
		// valid, signed, flipped, truncated, valid with an image
		if want := i != 2 && i != 3; (err == nil) != want {
			t.Errorf("seed %d (%d bytes): %v, want ok=%v", i, len(s), err, want)
		}
		t.Logf("seed %d: %d bytes", i, len(s))
	}
}

func FuzzVerifyReader(f *testing.F) {
	for _, s := range append(smallSeeds(f), fuzzSeeds(f)...) {
		f.Add(s)
	}
	allow := func(digest.Digest) bool { return true }
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := VerifyReader(context.Background(), struct{ io.Reader }{bytes.NewReader(b)}, VerifyOptions{Allow: allow})
		if err == nil && (res == nil || res.Root.Digest == "") {
			t.Fatalf("VerifyReader succeeded without a root: %+v", res)
		}
	})
}
