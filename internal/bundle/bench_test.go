package bundle

import (
	"context"
	"path/filepath"
	"testing"
)

// benchPackage is about 64 MiB of image layers: 16 layers of 4 MiB.
func benchPackage(b *testing.B) *pkg {
	b.Helper()
	return buildPackage(b, buildOptions{layers: 16, layerSize: 4 << 20})
}

func BenchmarkWrite(b *testing.B) {
	p := benchPackage(b)
	out := filepath.Join(b.TempDir(), "bench.skiff")
	res, err := Write(context.Background(), p.store, p.root, out, WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Write(context.Background(), p.store, p.root, out, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	p := benchPackage(b)
	out := filepath.Join(b.TempDir(), "bench.skiff")
	res, err := Write(context.Background(), p.store, p.root, out, WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(context.Background(), out, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
