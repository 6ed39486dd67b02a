package oci

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// Need is a blob or manifest that a repository must hold: content a delta
// package leaves out because its base was loaded before.
type Need struct {
	Repo       string
	Descriptor ocispec.Descriptor
}

// EnsureResult reports [Ensure].
type EnsureResult struct {
	// Missing are the needs no repository of the registry holds.
	Missing []Need
	// Present counts needs their repository held already; Mounted those
	// mounted (blobs) or copied (manifests) from another repository.
	Present, Mounted int
	// Manifests holds the content of every needed manifest and of the
	// manifests below it, read from the registry, so that a push can walk
	// graphs its source lacks.
	Manifests map[digest.Digest][]byte
}

// Ensure makes each repository of the registry at host hold what it
// needs. A need its repository holds is left alone; one that another
// repository holds (one of the needs' repositories, else any the registry
// lists) is mounted, or for a manifest copied within the registry. Needs
// no repository holds are returned in Missing; nothing else is uploaded.
func Ensure(ctx context.Context, host string, needs []Need, o RemoteOptions) (*EnsureResult, error) {
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	e := &ensurer{c: c, host: host, res: &EnsureResult{Manifests: map[digest.Digest][]byte{}}}
	for _, n := range needs {
		if !slices.Contains(e.repos, n.Repo) {
			e.repos = append(e.repos, n.Repo)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(DefaultConcurrency)
	for _, n := range needs {
		g.Go(func() error { return e.ensure(gctx, n) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(e.res.Missing, func(a, b Need) int {
		return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Descriptor.Digest, b.Descriptor.Digest))
	})
	return e.res, nil
}

type ensurer struct {
	c    *client
	host string

	mu      sync.Mutex
	repos   []string // the needs' repositories, searched first
	catalog []string // the registry's other repositories, listed once
	listed  bool
	res     *EnsureResult
}

func (e *ensurer) ensure(ctx context.Context, n Need) error {
	what := fmt.Sprintf("checking %s/%s@%s", e.host, n.Repo, n.Descriptor.Digest)
	repo := e.c.repository(e.host, n.Repo)
	ok, err := repo.Exists(ctx, n.Descriptor)
	if err != nil {
		return explain(what, e.host, err)
	}
	if !ok {
		from, err := e.find(ctx, n)
		if err != nil {
			return err
		}
		if from == "" {
			e.mu.Lock()
			e.res.Missing = append(e.res.Missing, n)
			e.mu.Unlock()
			return nil
		}
		src := e.c.repository(e.host, from)
		if isManifest(n.Descriptor.MediaType) {
			err = oras.CopyGraph(ctx, src, repo, n.Descriptor, oras.CopyGraphOptions{Concurrency: 1})
		} else {
			err = repo.Mount(ctx, n.Descriptor, from, func() (io.ReadCloser, error) { return src.Fetch(ctx, n.Descriptor) })
		}
		if err != nil {
			return explain(fmt.Sprintf("copying %s from %s/%s to %s/%s", n.Descriptor.Digest, e.host, from, e.host, n.Repo), e.host, err)
		}
		e.mu.Lock()
		e.res.Mounted++
		e.mu.Unlock()
	} else {
		e.mu.Lock()
		e.res.Present++
		e.mu.Unlock()
	}
	if isManifest(n.Descriptor.MediaType) {
		return e.readManifests(ctx, n.Repo, n.Descriptor)
	}
	return nil
}

// find returns another repository holding n, or "".
func (e *ensurer) find(ctx context.Context, n Need) (string, error) {
	e.mu.Lock()
	repos := slices.Clone(e.repos)
	e.mu.Unlock()
	check := func(repos []string) (string, error) {
		for _, r := range repos {
			if r == n.Repo {
				continue
			}
			ok, err := e.c.repository(e.host, r).Exists(ctx, n.Descriptor)
			if err != nil {
				continue // no access to that repository: look further
			}
			if ok {
				return r, nil
			}
		}
		return "", nil
	}
	if r, err := check(repos); r != "" || err != nil {
		return r, err
	}
	e.mu.Lock()
	if !e.listed {
		e.listed = true
		// Best effort: a registry may not allow listing.
		_ = e.c.registry(e.host).Repositories(ctx, "", func(page []string) error {
			for _, r := range page {
				if !slices.Contains(e.repos, r) {
					e.catalog = append(e.catalog, r)
				}
			}
			return nil
		})
	}
	others := slices.Clone(e.catalog)
	e.mu.Unlock()
	return check(others)
}

// readManifests keeps d's content and that of the manifests below it.
func (e *ensurer) readManifests(ctx context.Context, repo string, d ocispec.Descriptor) error {
	e.mu.Lock()
	_, done := e.res.Manifests[d.Digest]
	e.mu.Unlock()
	if done {
		return nil
	}
	if d.Size > maxManifestBytes {
		return fmt.Errorf("manifest %s of %s/%s is %d bytes: too large", d.Digest, e.host, repo, d.Size)
	}
	r := e.c.repository(e.host, repo)
	b, err := content.FetchAll(ctx, r, d)
	if err != nil {
		return explain(fmt.Sprintf("reading %s/%s@%s", e.host, repo, d.Digest), e.host, err)
	}
	e.mu.Lock()
	e.res.Manifests[d.Digest] = b
	e.mu.Unlock()
	children, err := content.Successors(ctx, manifestBytes(b), d)
	if err != nil {
		return fmt.Errorf("reading %s/%s@%s: %w", e.host, repo, d.Digest, err)
	}
	for _, c := range children {
		if isManifest(c.MediaType) {
			if err := e.readManifests(ctx, repo, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// manifestBytes serves one manifest's content to content.Successors.
type manifestBytes []byte

func (b manifestBytes) Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b)), nil
}
