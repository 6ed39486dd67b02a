package build

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/inventory"
)

// LoadBase reads the base of a delta: an inventory file (skiff inventory)
// or an archive carried across before, whose blobs are then the base.
func LoadBase(ctx context.Context, path string) (*inventory.Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the delta base: %w", err)
	}
	first, err := bufio.NewReader(f).Peek(1)
	f.Close()
	if err == nil && (first[0] == '{' || first[0] == ' ' || first[0] == '\n') {
		return inventory.Read(path)
	}
	inv, err := inventory.FromArchive(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("reading the delta base %s (neither an inventory nor an archive): %w", path, err)
	}
	return inv, nil
}

// deltaOf returns the blobs of the images' graphs that base holds: the
// roots of the subgraphs a delta archive leaves out, sorted. The empty
// JSON blob is never omitted (signatures use it as their config).
func deltaOf(ctx context.Context, store content.Fetcher, imgs []ocispec.Descriptor, base *inventory.Inventory) ([]digest.Digest, int64, error) {
	seen := map[digest.Digest]bool{}
	var omitted []digest.Digest
	var bytes int64
	queue := append([]ocispec.Descriptor(nil), imgs...)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if d.Digest != ocispec.DescriptorEmptyJSON.Digest && base.Has(d.Digest, d.Size) {
			omitted = append(omitted, d.Digest)
			bytes += d.Size
			continue
		}
		children, err := content.Successors(ctx, store, d)
		if err != nil {
			return nil, 0, fmt.Errorf("walking image %s: %w", d.Digest, err)
		}
		queue = append(queue, children...)
	}
	return omitted, bytes, nil
}

// deltaDescription sets d.Delta for a delta against base.
func deltaDescription(ctx context.Context, store content.Fetcher, imgs []ocispec.Descriptor, base *inventory.Inventory, d *bundle.Description) (map[digest.Digest]bool, error) {
	id, err := base.Digest()
	if err != nil {
		return nil, err
	}
	omitted, _, err := deltaOf(ctx, store, imgs, base)
	if err != nil {
		return nil, err
	}
	d.Delta = &bundle.Delta{Base: id.String(), Omitted: omitted}
	set := make(map[digest.Digest]bool, len(omitted))
	for _, o := range omitted {
		set[o] = true
	}
	return set, nil
}
