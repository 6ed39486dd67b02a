package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	middleware "github.com/distribution/distribution/v3/registry/middleware/registry"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

// captureMiddleware is a registry middleware that hands the handler the
// namespace its distribution application serves (the storage with its
// blob descriptor cache), so that the handler's own reads and deletes
// go through the same caches as its HTTP API.
const captureMiddleware = "skiff-capture"

// captured holds the namespace of each application being configured,
// by the id in its middleware options, until NewHandler takes it.
var captured sync.Map

func init() {
	middleware.Register(captureMiddleware, func(_ context.Context, ns distribution.Namespace, _ storagedriver.StorageDriver, o map[string]any) (distribution.Namespace, error) {
		id, _ := o["id"].(string)
		captured.Store(id, ns)
		return ns, nil
	})
}

// capture adds the capture middleware to cfg; take returns the
// namespace once the application is configured.
func capture(cfg *configuration.Configuration) (take func() (distribution.Namespace, error)) {
	id := randomSecret()
	if cfg.Middleware == nil {
		cfg.Middleware = map[string][]configuration.Middleware{}
	}
	cfg.Middleware["registry"] = append(cfg.Middleware["registry"], configuration.Middleware{Name: captureMiddleware, Options: configuration.Parameters{"id": id}})
	return func() (distribution.Namespace, error) {
		ns, ok := captured.LoadAndDelete(id)
		if !ok {
			return nil, errors.New("registry: the storage namespace was not configured")
		}
		return ns.(distribution.Namespace), nil
	}
}

// Repository is one repository of a [Handler]'s storage, read and
// written through distribution's storage API: past the HTTP API and the
// access control of whatever embeds the handler, but through the same
// storage and caches. Its methods follow oras-go's content interfaces
// (a missing digest or tag wraps errdef.ErrNotFound), so oras.CopyGraph
// and bundle.Write can use it.
type Repository struct {
	name string
	repo distribution.Repository
}

// Repository opens repository name (OWNER/NAME) of the handler's
// storage. It does not need to exist yet.
func (h *Handler) Repository(ctx context.Context, name string) (*Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, fmt.Errorf("registry: repository %q: %w", name, err)
	}
	repo, err := h.ns.Repository(ctx, named)
	if err != nil {
		return nil, fmt.Errorf("registry: opening repository %s: %w", name, err)
	}
	return &Repository{name: name, repo: repo}, nil
}

// isManifest reports whether a media type is a manifest's (stored as a
// manifest revision, not as a layer).
func isManifest(mediaType string) bool {
	return slices.Contains(distribution.ManifestMediaTypes(), mediaType) || mediaType == "application/vnd.oci.artifact.manifest.v1+json"
}

// missing wraps errdef.ErrNotFound when err says a blob, manifest or
// tag is missing.
func missing(err error, what string) error {
	var (
		unknownRev distribution.ErrManifestUnknownRevision
		unknownTag distribution.ErrTagUnknown
		noPath     storagedriver.PathNotFoundError
	)
	if errors.Is(err, distribution.ErrBlobUnknown) || errors.As(err, &unknownRev) || errors.As(err, &unknownTag) || errors.As(err, &noPath) {
		return fmt.Errorf("%s: %w", what, errdef.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Fetch reads a manifest or a blob.
func (r *Repository) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	what := fmt.Sprintf("registry: reading %s in %s", desc.Digest, r.name)
	if isManifest(desc.MediaType) {
		ms, err := r.repo.Manifests(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		m, err := ms.Get(ctx, desc.Digest)
		if err != nil {
			return nil, missing(err, what)
		}
		_, payload, err := m.Payload()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return io.NopCloser(bytes.NewReader(payload)), nil
	}
	rc, err := r.repo.Blobs(ctx).Open(ctx, desc.Digest)
	if err != nil {
		return nil, missing(err, what)
	}
	return rc, nil
}

// Exists reports whether a manifest or blob is in the repository.
func (r *Repository) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if isManifest(desc.MediaType) {
		ms, err := r.repo.Manifests(ctx)
		if err != nil {
			return false, err
		}
		return ms.Exists(ctx, desc.Digest)
	}
	_, err := r.Stat(ctx, desc.Digest)
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Stat describes blob d (its size and digest).
func (r *Repository) Stat(ctx context.Context, d digest.Digest) (ocispec.Descriptor, error) {
	desc, err := r.repo.Blobs(ctx).Stat(ctx, d)
	if err != nil {
		return desc, missing(err, fmt.Sprintf("registry: stat of %s in %s", d, r.name))
	}
	return desc, nil
}

// Push stores a manifest or a blob, which must match expected.
func (r *Repository) Push(ctx context.Context, expected ocispec.Descriptor, content io.Reader) error {
	what := fmt.Sprintf("registry: storing %s in %s", expected.Digest, r.name)
	if isManifest(expected.MediaType) {
		b, err := io.ReadAll(io.LimitReader(content, expected.Size+1))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if int64(len(b)) != expected.Size || digest.FromBytes(b) != expected.Digest {
			return fmt.Errorf("%s: the content does not match its descriptor", what)
		}
		m, _, err := distribution.UnmarshalManifest(expected.MediaType, b)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ms, err := r.repo.Manifests(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		got, err := ms.Put(ctx, m)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if got != expected.Digest {
			return fmt.Errorf("%s: stored as %s", what, got)
		}
		return nil
	}
	bw, err := r.repo.Blobs(ctx).Create(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := bw.ReadFrom(content); err != nil {
		bw.Cancel(ctx)
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := bw.Commit(ctx, ocispec.Descriptor{MediaType: expected.MediaType, Digest: expected.Digest, Size: expected.Size}); err != nil {
		bw.Cancel(ctx)
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Mount links blob desc, held by repository from, into this repository
// without copying it. When from does not hold it, the content
// getContent returns is stored instead (as oras-go's registry.Mounter);
// without getContent that wraps errdef.ErrNotFound.
func (r *Repository) Mount(ctx context.Context, desc ocispec.Descriptor, from string, getContent func() (io.ReadCloser, error)) error {
	what := fmt.Sprintf("registry: mounting %s from %s into %s", desc.Digest, from, r.name)
	named, err := reference.WithName(from)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	canonical, err := reference.WithDigest(named, desc.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	bw, err := r.repo.Blobs(ctx).Create(ctx, storage.WithMountFrom(canonical))
	var mounted distribution.ErrBlobMounted
	if errors.As(err, &mounted) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	bw.Cancel(ctx) // not mounted: no upload through this session
	if getContent == nil {
		return fmt.Errorf("%s: %w", what, errdef.ErrNotFound)
	}
	rc, err := getContent()
	if err != nil {
		return err
	}
	defer rc.Close()
	return r.Push(ctx, desc, rc)
}

// Tag points tag at manifest desc, which must be stored.
func (r *Repository) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	if err := r.repo.Tags(ctx).Tag(ctx, tag, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}); err != nil {
		return fmt.Errorf("registry: tagging %s as %s:%s: %w", desc.Digest, r.name, tag, err)
	}
	return nil
}

// Untag deletes tag; the manifest it pointed at stays (until garbage
// collection). A tag that does not exist wraps errdef.ErrNotFound.
func (r *Repository) Untag(ctx context.Context, tag string) error {
	if err := r.repo.Tags(ctx).Untag(ctx, tag); err != nil {
		return missing(err, fmt.Sprintf("registry: deleting tag %s:%s", r.name, tag))
	}
	return nil
}
