package bundle

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb compresses n zero bytes; declared, if set, writes the content size
// into the frame header.
func bomb(t *testing.T, n int64, declared bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if declared {
		enc.ResetContentSize(&buf, n)
	} else {
		enc.Reset(&buf)
	}
	if _, err := io.Copy(enc, io.LimitReader(zeros{}, n)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressManifestsBounded(t *testing.T) {
	const big = 1 << 30 // 1 GiB of zeros: about 33 KB compressed
	small := []byte("apiVersion: v1\nkind: ConfigMap\n")
	enc, _ := zstd.NewWriter(nil)
	tests := []struct {
		name string
		z    []byte
		want error
	}{
		{"ordinary", enc.EncodeAll(small, nil), nil},
		{"bomb declaring its size", bomb(t, big, true), ErrTooLarge},
		{"bomb declaring nothing", bomb(t, big, false), ErrTooLarge},
		{"not zstd", []byte("plain yaml"), ErrNotPackage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, err := DecompressManifests(tt.z)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v (compressed %d bytes)", err, tt.want, len(tt.z))
			}
			if tt.want == nil && !bytes.Equal(out, small) {
				t.Errorf("got %q, want %q", out, small)
			}
			// Allocation follows the cap, not the bomb's size (reading it
			// whole allocated more than 2 GiB).
			// Under -race sync.Pool drops items at random, so the decoder
			// reallocates its block buffers: only the error is checked there.
			if alloc := after.TotalAlloc - before.TotalAlloc; !raceEnabled && alloc > big/2 {
				t.Errorf("allocated %d bytes decompressing, more than half the bomb's %d", alloc, int64(big))
			}
		})
	}
}
