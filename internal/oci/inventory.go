package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Catalog lists the repositories of the registry at host, sorted.
func Catalog(ctx context.Context, host string, o RemoteOptions) ([]string, error) {
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	var repos []string
	err = c.registry(host).Repositories(ctx, "", func(page []string) error {
		repos = append(repos, page...)
		return nil
	})
	if err != nil {
		return nil, explain("listing repositories of "+host, host, err)
	}
	sort.Strings(repos)
	return repos, nil
}

// Inventory returns every digest (manifests and blobs) reachable from a
// tag in the registry at host, with its size. A package built against it
// can leave those blobs out (a delta).
func Inventory(ctx context.Context, host string, o RemoteOptions) (map[digest.Digest]int64, error) {
	repos, err := Catalog(ctx, host, o)
	if err != nil {
		return nil, err
	}
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	inv := &inventory{have: map[digest.Digest]int64{}, walked: map[digest.Digest]bool{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(DefaultConcurrency)
	for _, name := range repos {
		g.Go(func() error {
			what := "taking inventory of " + host + "/" + name
			repo := c.repository(host, name)
			var tags []string
			if err := repo.Tags(gctx, "", func(page []string) error {
				tags = append(tags, page...)
				return nil
			}); err != nil {
				// The catalog lists a repository once it holds a
				// manifest; until one is tagged (a push in progress, or
				// manifests pushed by digest only) its tag list answers
				// 404 name unknown. Nothing in it is reachable from a tag.
				if isNotFound(err) {
					return nil
				}
				return explain(what, host, err)
			}
			for _, tag := range tags {
				desc, err := repo.Resolve(gctx, tag)
				if isNotFound(err) {
					// Not resolvable yet or any more: distribution lists a
					// tag as soon as its directory exists, before the link
					// that resolves it is written; or it was deleted since.
					continue
				}
				if err != nil {
					return explain(what+":"+tag, host, err)
				}
				if err := inv.walk(gctx, repo, desc); err != nil {
					return explain(what+":"+tag, host, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return inv.have, nil
}

type inventory struct {
	mu     sync.Mutex
	have   map[digest.Digest]int64
	walked map[digest.Digest]bool // manifests whose children were listed
}

// walk records d and, for a manifest, everything below it. A manifest is
// read once even when many tags or repositories share it.
func (inv *inventory) walk(ctx context.Context, f content.Fetcher, d ocispec.Descriptor) error {
	inv.mu.Lock()
	inv.have[d.Digest] = d.Size
	done := inv.walked[d.Digest]
	if isManifest(d.MediaType) {
		inv.walked[d.Digest] = true
	}
	inv.mu.Unlock()
	if done || !isManifest(d.MediaType) {
		return nil
	}
	if d.Size > maxManifestBytes {
		return fmt.Errorf("manifest %s is %d bytes: too large", d.Digest, d.Size)
	}
	children, err := content.Successors(ctx, f, d)
	if err != nil {
		return err
	}
	for _, ch := range children {
		if err := inv.walk(ctx, f, ch); err != nil {
			return err
		}
	}
	return nil
}

// isNotFound reports whether a registry answered 404 (as an error
// response, or as oras-go's errdef.ErrNotFound).
func isNotFound(err error) bool {
	var resp *errcode.ErrorResponse
	return errors.Is(err, errdef.ErrNotFound) || errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound
}
