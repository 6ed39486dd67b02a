// Package inventory records which blobs the air-gapped side already
// holds, so that the connected side can build a delta package that leaves
// them out. An inventory is a small JSON file (digests and sizes) taken
// from a registry or from an archive that was carried across before; its
// identity is the sha256 of its canonical encoding.
package inventory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/oci"
)

// Version is the version of the inventory format.
const Version = 1

// MaxBytes bounds an inventory file a reader loads (about 200k blobs).
const MaxBytes = 32 << 20

// ErrInvalid: the file is not a valid inventory.
var ErrInvalid = errors.New("invalid inventory")

// Inventory lists blobs held on the air-gapped side.
type Inventory struct {
	Version int `json:"version"`
	// Source says where the inventory was taken: "registry HOST[/PREFIX]"
	// or "archive NAME:VERSION (ROOT-DIGEST)".
	Source string `json:"source"`
	// Blobs are sorted by digest, each once.
	Blobs []Blob `json:"blobs"`
}

// Blob is a held blob.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// New returns an inventory of the given blobs.
func New(source string, blobs map[digest.Digest]int64) *Inventory {
	inv := &Inventory{Version: Version, Source: source, Blobs: make([]Blob, 0, len(blobs))}
	for d, s := range blobs {
		inv.Blobs = append(inv.Blobs, Blob{Digest: d, Size: s})
	}
	slices.SortFunc(inv.Blobs, func(a, b Blob) int { return cmp.Compare(a.Digest, b.Digest) })
	return inv
}

// Marshal returns the canonical encoding: compact JSON with one blob per
// line, blobs sorted.
func (inv *Inventory) Marshal() ([]byte, error) {
	n := *inv
	n.Blobs = slices.Clone(inv.Blobs)
	slices.SortFunc(n.Blobs, func(a, b Blob) int { return cmp.Compare(a.Digest, b.Digest) })
	n.Blobs = slices.CompactFunc(n.Blobs, func(a, b Blob) bool { return a.Digest == b.Digest })
	if n.Blobs == nil {
		n.Blobs = []Blob{}
	}
	head, err := json.Marshal(struct {
		Version int    `json:"version"`
		Source  string `json:"source"`
	}{n.Version, n.Source})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(head[:len(head)-1])
	b.WriteString(`,"blobs":[`)
	for i, bl := range n.Blobs {
		if i > 0 {
			b.WriteByte(',')
		}
		line, err := json.Marshal(bl)
		if err != nil {
			return nil, err
		}
		b.WriteString("\n")
		b.Write(line)
	}
	b.WriteString("\n]}\n")
	return b.Bytes(), nil
}

// Digest is the inventory's identity: the sha256 of its canonical
// encoding. A delta built against it records it as its base.
func (inv *Inventory) Digest() (digest.Digest, error) {
	b, err := inv.Marshal()
	if err != nil {
		return "", err
	}
	return digest.FromBytes(b), nil
}

// Has reports whether the inventory holds d with the given size.
func (inv *Inventory) Has(d digest.Digest, size int64) bool {
	i, ok := slices.BinarySearchFunc(inv.Blobs, d, func(b Blob, d digest.Digest) int { return cmp.Compare(b.Digest, d) })
	return ok && inv.Blobs[i].Size == size
}

// Size returns the number of blobs and their total size.
func (inv *Inventory) Size() (blobs int, bytes int64) {
	for _, b := range inv.Blobs {
		bytes += b.Size
	}
	return len(inv.Blobs), bytes
}

// Parse decodes and checks an inventory: the version, every digest's form
// (sha256), sizes, and that blobs are sorted without duplicates.
func Parse(b []byte) (*Inventory, error) {
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxBytes)
	}
	var inv Inventory
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("%w: %v: pass a file written by skiff inventory", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	if inv.Version != Version {
		return nil, fmt.Errorf("%w: version %d, want %d: this skiff is too old or the file is not an inventory", ErrInvalid, inv.Version, Version)
	}
	for i, bl := range inv.Blobs {
		if bl.Digest.Validate() != nil || bl.Digest.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("%w: blob %d: %q is not a sha256 digest", ErrInvalid, i, bl.Digest)
		}
		if bl.Size < 0 {
			return nil, fmt.Errorf("%w: blob %s: negative size", ErrInvalid, bl.Digest)
		}
		if i > 0 && inv.Blobs[i-1].Digest >= bl.Digest {
			return nil, fmt.Errorf("%w: blobs are not sorted by digest or repeat %s", ErrInvalid, bl.Digest)
		}
	}
	return &inv, nil
}

// Read reads and checks the inventory at path.
func Read(path string) (*Inventory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading inventory %s: %w", path, err)
	}
	inv, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

// Write writes inv to path atomically (temporary file, fsync, rename).
func Write(path string, inv *Inventory) error {
	b, err := inv.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing inventory: %w", err)
	}
	return nil
}

// FromRegistry takes the inventory of a registry,
// [https://|http://]HOST[:PORT][/PREFIX]: every blob reachable from a tag
// in any of its repositories (a delta may rely on any of them: loading
// mounts blobs between repositories).
func FromRegistry(ctx context.Context, registry string, o oci.RemoteOptions) (*Inventory, error) {
	if strings.Trim(registry, "/") == "" {
		return nil, errors.New("no registry: pass --registry HOST[:PORT][/PREFIX]")
	}
	a, err := endpoint.Parse(registry)
	if err != nil {
		return nil, fmt.Errorf("--registry: %w", err)
	}
	have, err := oci.Inventory(ctx, a.Host, o.WithAddress(a))
	if err != nil {
		return nil, err
	}
	return New("registry "+registry, have), nil
}

// FromArchive takes the inventory of an archive: every blob it holds.
// Blobs a delta archive omits are not listed (they are in its base, which
// has its own inventory).
func FromArchive(ctx context.Context, path string) (*Inventory, error) {
	a, err := bundle.Open(path)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	have := map[digest.Digest]int64{}
	queue := slices.Clone(a.Index().Manifests)
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := queue[0]
		queue = queue[1:]
		if _, ok := have[d.Digest]; ok || !a.Has(d.Digest) {
			continue
		}
		have[d.Digest] = d.Size
		if !isManifest(d.MediaType) {
			continue
		}
		children, err := content.Successors(ctx, a, d)
		if err != nil {
			return nil, fmt.Errorf("taking inventory of %s: %w", path, err)
		}
		queue = append(queue, children...)
	}
	root := a.Root()
	return New(fmt.Sprintf("archive %s (%s)", root.Annotations[bundle.AnnotationRefName], root.Digest), have), nil
}

func isManifest(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}
