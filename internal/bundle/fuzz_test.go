package bundle

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"
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

func FuzzVerifyReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
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
