package hub

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// storedRepo is one repository of the hub's own storage, read and
// written through distribution's storage API (registry.Repository):
// past the hub's access control, through the embedded registry's
// storage and caches. Missing content wraps errdef.ErrNotFound.
type storedRepo interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	Push(ctx context.Context, expected ocispec.Descriptor, content io.Reader) error
	Stat(ctx context.Context, d digest.Digest) (ocispec.Descriptor, error)
	Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error
	Untag(ctx context.Context, tag string) error
	Mount(ctx context.Context, desc ocispec.Descriptor, from string, getContent func() (io.ReadCloser, error)) error
}

// repository opens repository repo (OWNER/NAME) of the hub's storage.
func (h *Hub) repository(ctx context.Context, repo string) (storedRepo, error) {
	r, err := h.registry.Repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	if h.wrapRepo != nil {
		return h.wrapRepo(r), nil
	}
	return r, nil
}
