// Package bench holds benchmarks of whole Skiff operations on generated
// data. They run only with -bench:
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/
//
// Results are recorded in bench/README.md.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/split"
)

// BenchmarkDeltaSize builds version 2 of a 20-image package in which 3
// images changed one layer, as a full archive and as a delta against
// version 1, and reports both sizes.
func BenchmarkDeltaSize(b *testing.B) {
	ctx := context.Background()
	reg := fixture.Registry(b)
	rng := rand.NewChaCha8([32]byte{1})
	base := make([]byte, 2<<20) // a base OS layer all images share
	rng.Read(base)
	var v1, v2 []string
	for i := range 20 {
		own := make([]byte, 512<<10) // the image's stable layer
		rng.Read(own)
		shared := [][]byte{base, own}
		ref1 := fmt.Sprintf("%s/img%02d:1", reg, i)
		fixture.PushImage(b, ref1, fixture.ImageOptions{Shared: shared, Layers: []int{128 << 10}, Seed: int64(i)})
		v1 = append(v1, ref1)
		if i < 3 { // the version bump: a new application layer
			ref2 := fmt.Sprintf("%s/img%02d:2", reg, i)
			fixture.PushImage(b, ref2, fixture.ImageOptions{Shared: shared, Layers: []int{128 << 10}, Seed: int64(1000 + i)})
			v2 = append(v2, ref2)
		} else {
			v2 = append(v2, ref1)
		}
	}
	dir := b.TempDir()
	old := filepath.Join(dir, "v1.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: spec(b, "1.0.0", v1), Output: old}); err != nil {
		b.Fatal(err)
	}
	v2spec := spec(b, "2.0.0", v2)
	full, err := build.Build(ctx, build.Options{Spec: v2spec, Output: filepath.Join(dir, "full.skiff")})
	if err != nil {
		b.Fatal(err)
	}
	var delta *build.Result
	b.ResetTimer()
	for b.Loop() {
		delta, err = build.Build(ctx, build.Options{Spec: v2spec, Output: filepath.Join(dir, "delta.skiff"), DeltaFrom: old})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(full.Bytes), "full-bytes")
	b.ReportMetric(float64(delta.Bytes), "delta-bytes")
	b.ReportMetric(100*float64(delta.Bytes)/float64(full.Bytes), "delta-%")
	b.ReportMetric(float64(delta.Omitted), "omitted-blobs")
}

func spec(b *testing.B, version string, images []string) string {
	dir := b.TempDir()
	y := fmt.Sprintf("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: bench, version: %s}\nplatforms: [linux/amd64]\nimages: [%s]\n", version, strings.Join(images, ", "))
	if err := os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte(y), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// archiveSizes are the sizes split and join run on: memory must not grow
// with them.
var archiveSizes = []int{16 << 20, 64 << 20}

// BenchmarkSplit splits an archive into 4 MiB parts with 2 parity parts.
func BenchmarkSplit(b *testing.B) {
	for _, size := range archiveSizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			path := randomFile(b, size)
			b.SetBytes(int64(size))
			measure(b, func() {
				if _, err := split.Split(context.Background(), path, split.Options{PartSize: 4 << 20, Parity: 2}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkJoin joins the parts again: intact, and with two data parts
// lost and rebuilt from parity.
func BenchmarkJoin(b *testing.B) {
	for _, lost := range []int{0, 2} {
		for _, size := range archiveSizes {
			b.Run(fmt.Sprintf("lost=%d/%dMiB", lost, size>>20), func(b *testing.B) {
				path := randomFile(b, size)
				if _, err := split.Split(context.Background(), path, split.Options{PartSize: 4 << 20, Parity: 2}); err != nil {
					b.Fatal(err)
				}
				for i := range lost {
					os.Remove(fmt.Sprintf("%s.part-%03d", path, 2*i+1))
				}
				out := filepath.Join(filepath.Dir(path), "joined.skiff")
				b.SetBytes(int64(size))
				measure(b, func() {
					res, err := split.Join(context.Background(), split.ManifestPath(path), split.JoinOptions{Output: out, Force: true})
					if err != nil {
						b.Fatal(err)
					}
					if res.Repaired != (lost > 0) {
						b.Fatalf("repaired %v with %d parts lost", res.Repaired, lost)
					}
				})
			})
		}
	}
}

func randomFile(b *testing.B, size int) string {
	path := filepath.Join(b.TempDir(), "pkg.skiff")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{byte(size >> 20)})
	buf := make([]byte, 1<<20)
	for range size >> 20 {
		rng.Read(buf)
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

// measure runs fn b.N times and reports the peak heap in use (sampled)
// and the bytes allocated per operation.
func measure(b *testing.B, fn func()) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	b.ResetTimer()
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(max(n, 1))/(1<<20), "alloc-MiB/op")
}
