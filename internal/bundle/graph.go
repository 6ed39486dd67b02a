package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Media types of the manifests and indexes whose children the graph walk
// follows.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeArtifactManifest   = "application/vnd.oci.artifact.manifest.v1+json"
)

// hasChildren reports whether a blob of media type mt points at other blobs.
func hasChildren(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		mediaTypeDockerManifest, mediaTypeDockerManifestList, mediaTypeArtifactManifest:
		return true
	}
	return false
}

// node is the union of the fields of manifests and indexes that point at
// other blobs.
type node struct {
	MediaType    string               `json:"mediaType,omitempty"`
	ArtifactType string               `json:"artifactType,omitempty"`
	Config       *ocispec.Descriptor  `json:"config,omitempty"`
	Layers       []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests    []ocispec.Descriptor `json:"manifests,omitempty"`
	Blobs        []ocispec.Descriptor `json:"blobs,omitempty"`
	Subject      *ocispec.Descriptor  `json:"subject,omitempty"`
}

// children returns the blobs n points at, read as media type mt.
func (n *node) children(mt string) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if n.Subject != nil {
		out = append(out, *n.Subject)
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		if n.Config != nil {
			out = append(out, *n.Config)
		}
		out = append(out, n.Layers...)
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		out = append(out, n.Manifests...)
	case mediaTypeArtifactManifest:
		out = append(out, n.Blobs...)
	}
	return out
}

// checkDescriptor rejects descriptors this format cannot hold.
func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("descriptor digest %s: only sha256 is supported", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has negative size %d", d.Digest, d.Size)
	}
	return nil
}

// fetchJSON fetches a small JSON blob, verified, refusing blobs larger than
// maxJSON.
func fetchJSON(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxJSON {
		return nil, fmt.Errorf("%s %s is %d bytes, more than the %d allowed", desc.MediaType, desc.Digest, desc.Size, maxJSON)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", desc.Digest, err)
	}
	return b, nil
}

// successors fetches desc and returns the blobs it points at (none for a
// blob without children).
func successors(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if !hasChildren(desc.MediaType) {
		return nil, nil
	}
	b, err := fetchJSON(ctx, f, desc)
	if err != nil {
		return nil, err
	}
	var n node
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", desc.MediaType, desc.Digest, err)
	}
	return n.children(desc.MediaType), nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
