package bundle

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// ReadDescription reads the description of the package whose root index
// is root from f (a store, not an archive file).
func ReadDescription(ctx context.Context, f content.Fetcher, root ocispec.Descriptor) (*Description, error) {
	if root.MediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%w: the package root has media type %q, want %q", ErrNotPackage, root.MediaType, ocispec.MediaTypeImageIndex)
	}
	b, err := fetchJSON(ctx, f, root)
	if err != nil {
		return nil, fmt.Errorf("reading the package root: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: decoding the package root %s: %w", ErrNotPackage, root.Digest, err)
	}
	meta, err := findMetadata(idx)
	if err != nil {
		return nil, err
	}
	if b, err = fetchJSON(ctx, f, meta); err != nil {
		return nil, fmt.Errorf("reading the metadata manifest: %w", err)
	}
	var mm ocispec.Manifest
	if err := json.Unmarshal(b, &mm); err != nil {
		return nil, fmt.Errorf("%w: decoding the metadata manifest %s: %w", ErrNotPackage, meta.Digest, err)
	}
	cfg := mm.Config
	if cfg.MediaType != MediaTypeConfig {
		return nil, fmt.Errorf("%w: the metadata config has media type %q, want %q", ErrNotPackage, cfg.MediaType, MediaTypeConfig)
	}
	if b, err = fetchJSON(ctx, f, cfg); err != nil {
		return nil, fmt.Errorf("reading the package description: %w", err)
	}
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: decoding the package description: %w", ErrNotPackage, err)
	}
	return &d, nil
}

// Graph returns every blob reachable from roots in src, the roots
// included, once each and sorted by digest: the blobs [Write] would write
// (in its own order). A blob src lacks is an error wrapping ErrMissingBlob.
func Graph(ctx context.Context, src content.Fetcher, roots []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	w := &walker{src: src, seen: make(map[digest.Digest]ocispec.Descriptor)}
	return w.walk(ctx, roots, memberIndex)
}
