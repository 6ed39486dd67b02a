package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// MaxManifestSet bounds a manifest set once decompressed (its YAML).
const MaxManifestSet = 64 << 20

// ErrTooLarge: decompressed content would exceed the size its header
// declares or the hard cap for its kind (a decompression bomb).
var ErrTooLarge = errors.New("decompressed content is too large")

// DecompressManifests decompresses a manifest set layer
// ([MediaTypeManifests]: zstd-compressed YAML). Decompression is bounded
// by the content size the zstd frame declares and by [MaxManifestSet]:
// memory never grows past the cap, whatever the layer holds.
func DecompressManifests(z []byte) ([]byte, error) {
	return decompressZstd(z, MaxManifestSet)
}

// decompressZstd decompresses z, refusing more than limit bytes of output.
func decompressZstd(z []byte, limit int64) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		return nil, fmt.Errorf("%w: reading the zstd frame header: %w", ErrNotPackage, err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("%w: the layer declares %d bytes once decompressed, more than the %d allowed", ErrTooLarge, h.FrameContentSize, limit)
	}
	dec, err := zstd.NewReader(bytes.NewReader(z), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %w", ErrNotPackage, err)
	}
	defer dec.Close()
	var buf bytes.Buffer
	if h.HasFCS {
		buf.Grow(int(h.FrameContentSize) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(dec, limit+1))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded), n > limit:
		return nil, fmt.Errorf("%w: the layer expands to more than %d bytes", ErrTooLarge, limit)
	case err != nil:
		return nil, fmt.Errorf("%w: decompressing: %w", ErrNotPackage, err)
	}
	return buf.Bytes(), nil
}
