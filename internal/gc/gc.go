// Package gc frees registry space: it deletes the images under a registry
// prefix that no retained release revision refers to, and, for the
// embedded registry, sweeps the blobs nothing refers to any more.
//
// The images a revision needs are the values of its Record.Images map
// (target references pinned by digest). Every revision that is deployed
// or has an operation in progress is always retained, so what runs in
// the cluster is never deleted.
package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/registry"
	"github.com/skiffhq/skiff/internal/release"
)

// ErrNoRecords: no release revision is retained, so every image under
// the prefix would be deleted. Usually the wrong cluster.
var ErrNoRecords = errors.New("no release records found")

// Records lists release records; release.NewSecrets(kubeClient)
// implements it.
type Records interface {
	// ListAll returns every record in namespace ("" means all), sorted
	// by namespace, deployment and revision.
	ListAll(ctx context.Context, namespace string) ([]*release.Record, error)
}

// Options configure [Run].
type Options struct {
	// Registry is HOST[:PORT][/PREFIX]: only repositories under PREFIX
	// are collected. Required.
	Registry string
	Remote   oci.RemoteOptions
	// Records are the release records of the cluster. Required.
	Records Records
	// KeepHistory retains the newest KeepHistory revisions of each
	// deployment (plus every deployed or pending one); <= 0 retains
	// every stored revision.
	KeepHistory int
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Root is the storage directory (--root) of an embedded registry that
	// takes no pushes while GC runs; when set, the blobs no manifest
	// refers to any more are deleted from it after the manifests.
	Root string
	// AllowHubRoot lets Root be a stopped Skiff hub's root (see
	// registry.GCOptions); without it such a Root is refused before
	// anything is deleted.
	AllowHubRoot bool
	// Concurrency bounds parallel registry requests; if <= 0, 4 is used.
	Concurrency int
}

// Manifest is one image manifest (or index) in the registry.
type Manifest struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	MediaType  string        `json:"mediaType,omitempty"`
	Size       int64         `json:"size"`
	// Tags point at the manifest; empty for the platform manifests of a
	// deleted index.
	Tags []string `json:"tags,omitempty"`
}

// Ref is the manifest's reference host/repository@digest.
func (m Manifest) Ref(host string) string { return host + "/" + m.Repository + "@" + m.Digest.String() }

// Result reports a collection.
type Result struct {
	// Revisions counts the retained revisions; Images the distinct image
	// digests they refer to.
	Revisions int `json:"revisions"`
	Images    int `json:"images"`
	// Kept are the tagged manifests retained; Deleted those deleted (or,
	// with DryRun, that would be).
	Kept    []Manifest `json:"kept"`
	Deleted []Manifest `json:"deleted"`
	// Blobs reports the blob sweep when Options.Root was set (and not
	// DryRun).
	Blobs *registry.GCResult `json:"blobs,omitempty"`
}

// Run deletes from the registry every manifest under the prefix that no
// retained revision refers to, with the tags pointing to it (and the
// platform manifests of a deleted index), then sweeps unreferenced blobs
// when Options.Root is set.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Records == nil {
		return nil, errors.New("gc: no release records source")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Root != "" && !o.DryRun {
		// Refuse before deleting anything: the sweep would be refused
		// after the manifests were gone.
		if err := registry.CheckNotServing(o.Root); err != nil {
			return nil, err
		}
		if !o.AllowHubRoot {
			if err := registry.CheckNotHub(o.Root); err != nil {
				return nil, err
			}
		}
	}
	addr, err := splitRegistry(o.Registry)
	if err != nil {
		return nil, err
	}
	host, prefix := addr.Host, addr.Path
	recs, err := o.Records.ListAll(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("reading release records: %w", err)
	}
	kept := Retained(recs, o.KeepHistory)
	reg, err := oci.NewRegistry(host, o.Remote.WithAddress(addr))
	if err != nil {
		return nil, err
	}
	keep, err := pinned(ctx, reg, kept)
	if err != nil {
		return nil, err
	}
	res := &Result{Revisions: len(kept), Images: len(keep)}

	all, err := tagged(ctx, reg, prefix, o.Concurrency)
	if err != nil {
		return nil, err
	}
	var drop, material []Manifest
	for _, m := range all {
		switch {
		case keep[m.Digest]:
			res.Kept = append(res.Kept, m)
		case len(subjects(m)) > 0:
			material = append(material, m)
		default:
			drop = append(drop, m)
		}
	}
	if len(kept) == 0 && len(drop) > 0 && !o.DryRun {
		return nil, fmt.Errorf("%w in the cluster: refusing to delete all %d images under %s; check --kubeconfig and --context, or see what would go with --dry-run",
			ErrNoRecords, len(drop), o.Registry)
	}
	// Platform manifests of a kept index stay.
	for _, m := range res.Kept {
		children, err := reg.Children(ctx, m.Repository, descriptor(m))
		if err != nil {
			return nil, err
		}
		for _, c := range children {
			keep[c.Digest] = true
		}
	}
	// An image's signatures, attestations and referrers (tagged after
	// the digest they are about) go with it: kept while it is, until no
	// more of them is kept (a referrer of a kept referrer stays too).
	for changed := true; changed; {
		changed = false
		rest := material[:0]
		for _, m := range material {
			if !slices.ContainsFunc(subjects(m), func(d digest.Digest) bool { return keep[d] }) {
				rest = append(rest, m)
				continue
			}
			res.Kept = append(res.Kept, m)
			keep[m.Digest], changed = true, true
			children, err := reg.Children(ctx, m.Repository, descriptor(m))
			if err != nil {
				return nil, err
			}
			for _, c := range children {
				keep[c.Digest] = true
			}
		}
		material = rest
	}
	drop = append(drop, material...)
	for _, m := range drop {
		children, err := reg.Children(ctx, m.Repository, descriptor(m))
		if err != nil && !errors.Is(err, oci.ErrNotFound) {
			return nil, err
		}
		if !o.DryRun {
			if err := reg.Delete(ctx, m.Repository, descriptor(m)); err != nil && !errors.Is(err, oci.ErrNotFound) {
				return res, fmt.Errorf("%w: check that the registry allows deletes (REGISTRY_STORAGE_DELETE_ENABLED=true for distribution)", err)
			}
		}
		res.Deleted = append(res.Deleted, m)
		for _, c := range children {
			if keep[c.Digest] {
				continue
			}
			cm := Manifest{Repository: m.Repository, Digest: c.Digest, MediaType: c.MediaType, Size: c.Size}
			if !o.DryRun {
				if err := reg.Delete(ctx, m.Repository, c); err != nil && !errors.Is(err, oci.ErrNotFound) {
					return res, err
				}
			}
			res.Deleted = append(res.Deleted, cm)
		}
	}
	if o.Root != "" && !o.DryRun {
		if res.Blobs, err = registry.GC(ctx, o.Root, registry.GCOptions{AllowHubRoot: o.AllowHubRoot}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// materialTag matches the tags an image's supply-chain material is kept
// under: cosign's sha256-HEX.sig, .att and .sbom, and the OCI referrers
// tag sha256-HEX of registries without the referrers API.
var materialTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.(sig|att|sbom))?$`)

// subjects returns the digests m's tags say it is about, when every tag
// of m is a material tag; none otherwise.
func subjects(m Manifest) []digest.Digest {
	var out []digest.Digest
	for _, t := range m.Tags {
		g := materialTag.FindStringSubmatch(t)
		if g == nil {
			return nil
		}
		out = append(out, digest.NewDigestFromEncoded(digest.SHA256, g[1]))
	}
	return out
}

// Retained picks the revisions whose images are kept: per deployment the
// newest keepHistory (all when keepHistory <= 0), plus every deployed
// revision and every one with an operation in progress.
func Retained(recs []*release.Record, keepHistory int) []*release.Record {
	byKey := map[string][]*release.Record{}
	var keys []string
	for _, r := range recs {
		if _, ok := byKey[r.Key()]; !ok {
			keys = append(keys, r.Key())
		}
		byKey[r.Key()] = append(byKey[r.Key()], r)
	}
	var out []*release.Record
	for _, k := range keys {
		rs := byKey[k]
		slices.SortFunc(rs, func(a, b *release.Record) int { return cmp.Compare(a.Revision, b.Revision) })
		for i, r := range rs {
			newest := keepHistory <= 0 || i >= len(rs)-keepHistory
			if newest || r.Status == release.StatusDeployed || r.Status.Pending() {
				out = append(out, r)
			}
		}
	}
	return out
}

// pinned collects the digests the revisions refer to. A reference
// without a digest is resolved when it names this registry (and ignored
// when it is missing there).
func pinned(ctx context.Context, reg *oci.Registry, recs []*release.Record) (map[digest.Digest]bool, error) {
	keep := map[digest.Digest]bool{}
	for _, r := range recs {
		for src, ref := range r.Images {
			if _, d, ok := strings.Cut(ref, "@"); ok {
				dg, err := digest.Parse(d)
				if err != nil {
					return nil, fmt.Errorf("%s: image %s: target %q has a malformed digest: %w", r, src, ref, err)
				}
				keep[dg] = true
				continue
			}
			host, repo, tag, err := oci.SplitRef(ref)
			if err != nil || host != reg.Host() {
				continue
			}
			desc, err := reg.Resolve(ctx, repo, tag)
			if errors.Is(err, oci.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			keep[desc.Digest] = true
		}
	}
	return keep, nil
}

// tagged lists every tagged manifest of the repositories under prefix,
// one entry per repository and digest.
func tagged(ctx context.Context, reg *oci.Registry, prefix string, limit int) ([]Manifest, error) {
	repos, err := reg.Repositories(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		out []Manifest
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for _, repo := range repos {
		if prefix != "" && !strings.HasPrefix(repo, prefix+"/") {
			continue
		}
		g.Go(func() error {
			tags, err := reg.Tags(gctx, repo)
			if err != nil {
				return err
			}
			byDigest := map[digest.Digest]*Manifest{}
			var ms []*Manifest
			for _, tag := range tags {
				d, err := reg.Resolve(gctx, repo, tag)
				if errors.Is(err, oci.ErrNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				m := byDigest[d.Digest]
				if m == nil {
					m = &Manifest{Repository: repo, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size}
					byDigest[d.Digest] = m
					ms = append(ms, m)
				}
				m.Tags = append(m.Tags, tag)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				out = append(out, *m)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Manifest) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Digest, b.Digest))
	})
	return out, nil
}

func descriptor(m Manifest) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
}

// splitRegistry parses [https://|http://]HOST[:PORT][/PREFIX].
func splitRegistry(s string) (endpoint.Address, error) {
	if strings.Trim(s, "/") == "" {
		return endpoint.Address{}, errors.New("no registry: pass --registry HOST[:PORT][/PREFIX], the registry the images were loaded into")
	}
	a, err := endpoint.Parse(s)
	if err != nil {
		return endpoint.Address{}, fmt.Errorf("--registry: %w", err)
	}
	return a, nil
}
