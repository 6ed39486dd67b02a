package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Registry is a handle on one registry for inspecting and deleting
// manifests: what garbage collection and health checks need. It keeps one
// HTTP client (and its auth tokens) across calls and is safe for
// concurrent use.
type Registry struct {
	host string
	c    *client
}

// NewRegistry returns a handle on the registry at host (host[:port]).
func NewRegistry(host string, o RemoteOptions) (*Registry, error) {
	if host == "" || strings.Contains(host, "/") {
		return nil, fmt.Errorf("registry host %q: give host[:port] without a path", host)
	}
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	return &Registry{host: host, c: c}, nil
}

// Host is the registry's host[:port].
func (r *Registry) Host() string { return r.host }

// Repository returns an oras client of repository repo, sharing the
// registry's HTTP client, credentials and auth tokens: a read-only
// content source (and referrers lister) for copying graphs out of it.
func (r *Registry) Repository(repo string) *remote.Repository {
	return r.c.repository(r.host, repo)
}

// Explain turns an error from the registry into one that names what was
// being done and how to fix it (credentials, TLS, addresses, missing
// tags).
func (r *Registry) Explain(what string, err error) error {
	return r.c.annotate(explain(what, r.host, err))
}

// Ping checks that the registry answers its /v2/ endpoint.
func (r *Registry) Ping(ctx context.Context) error {
	if err := r.c.registry(r.host).Ping(ctx); err != nil {
		return r.c.annotate(explain("contacting registry "+r.host, r.host, err))
	}
	return nil
}

// Repositories lists the registry's repositories, sorted.
func (r *Registry) Repositories(ctx context.Context) ([]string, error) {
	var repos []string
	err := r.c.registry(r.host).Repositories(ctx, "", func(page []string) error {
		repos = append(repos, page...)
		return nil
	})
	if err != nil {
		return nil, r.c.annotate(explain("listing repositories of "+r.host, r.host, err))
	}
	sort.Strings(repos)
	return repos, nil
}

// Tags lists the tags of repository repo, sorted. A repository without
// tags gives none.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	var tags []string
	err := r.c.repository(r.host, repo).Tags(ctx, "", func(page []string) error {
		tags = append(tags, page...)
		return nil
	})
	if err != nil {
		return nil, r.c.annotate(explain("listing tags of "+r.host+"/"+repo, r.host, err))
	}
	sort.Strings(tags)
	return tags, nil
}

// Resolve looks up a tag or digest of repo with a HEAD request. A missing
// manifest gives an error matching ErrNotFound.
func (r *Registry) Resolve(ctx context.Context, repo, ref string) (ocispec.Descriptor, error) {
	d, err := r.c.repository(r.host, repo).Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, r.c.annotate(explain("resolving "+joinRef(r.host, repo, ref), r.host, err))
	}
	return d, nil
}

// Manifest fetches the manifest d of repo (at most 4 MiB).
func (r *Registry) Manifest(ctx context.Context, repo string, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > maxManifestBytes {
		return nil, fmt.Errorf("manifest %s of %s/%s is %d bytes: too large", d.Digest, r.host, repo, d.Size)
	}
	b, err := content.FetchAll(ctx, r.c.repository(r.host, repo), d)
	if err != nil {
		return nil, r.c.annotate(explain("fetching "+joinRef(r.host, repo, d.Digest.String()), r.host, err))
	}
	return b, nil
}

// Children returns the manifests an index or manifest list refers to
// (none for an image manifest).
func (r *Registry) Children(ctx context.Context, repo string, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if !isIndex(d.MediaType) {
		return nil, nil
	}
	b, err := r.Manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	succ, err := content.Successors(ctx, bytesFetcher(b), ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: int64(len(b))})
	if err != nil {
		return nil, fmt.Errorf("reading index %s of %s/%s: %w", d.Digest, r.host, repo, err)
	}
	var out []ocispec.Descriptor
	for _, s := range succ {
		if isManifest(s.MediaType) {
			out = append(out, s)
		}
	}
	return out, nil
}

// MissingBlobs walks the graph of manifest d in repo (fetching its
// manifests and indexes) and returns the blobs it refers to that the
// registry does not hold (a HEAD of each): an image whose manifest is
// there can still have lost layers.
func (r *Registry) MissingBlobs(ctx context.Context, repo string, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	rp := r.c.repository(r.host, repo)
	var missing []ocispec.Descriptor
	seen := map[digest.Digest]bool{}
	queue := []ocispec.Descriptor{d}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n.Digest] {
			continue
		}
		seen[n.Digest] = true
		if !isManifest(n.MediaType) {
			ok, err := rp.Blobs().Exists(ctx, n)
			if err != nil {
				return nil, r.c.annotate(explain("checking blob "+n.Digest.String()+" of "+joinRef(r.host, repo, d.Digest.String()), r.host, err))
			}
			if !ok {
				missing = append(missing, n)
			}
			continue
		}
		b, err := r.Manifest(ctx, repo, n)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, n)
			continue
		}
		if err != nil {
			return nil, err
		}
		succ, err := content.Successors(ctx, bytesFetcher(b), ocispec.Descriptor{MediaType: n.MediaType, Digest: n.Digest, Size: int64(len(b))})
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s of %s/%s: %w", n.Digest, r.host, repo, err)
		}
		queue = append(queue, succ...)
	}
	return missing, nil
}

// Delete deletes the manifest with digest d from repo; the registry drops
// the tags pointing to it. The registry must allow deletes
// (REGISTRY_STORAGE_DELETE_ENABLED for distribution).
func (r *Registry) Delete(ctx context.Context, repo string, d ocispec.Descriptor) error {
	if d.MediaType == "" {
		d.MediaType = ocispec.MediaTypeImageManifest
	}
	if err := r.c.repository(r.host, repo).Delete(ctx, d); err != nil {
		return r.c.annotate(explain("deleting "+joinRef(r.host, repo, d.Digest.String()), r.host, err))
	}
	return nil
}

// SplitRef splits an image reference into registry host, repository and
// tag or digest ("nginx" → "docker.io", "library/nginx", "latest"). A
// reference with both a tag and a digest gives the digest.
func SplitRef(ref string) (host, repo, tagOrDigest string, err error) {
	norm, err := Normalize(ref)
	if err != nil {
		return "", "", "", err
	}
	named, err := reference.ParseNormalizedNamed(norm)
	if err != nil {
		return "", "", "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	host, repo = reference.Domain(named), reference.Path(named)
	switch v := named.(type) {
	case reference.Digested:
		tagOrDigest = v.Digest().String()
	case reference.Tagged:
		tagOrDigest = v.Tag()
	}
	return host, repo, tagOrDigest, nil
}

func joinRef(host, repo, ref string) string {
	if _, err := digest.Parse(ref); err == nil {
		return host + "/" + repo + "@" + ref
	}
	return host + "/" + repo + ":" + ref
}

// bytesFetcher serves one manifest's bytes to content.Successors.
type bytesFetcher []byte

func (b bytesFetcher) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b)), nil
}
