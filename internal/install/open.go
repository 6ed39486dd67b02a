// Package install is the air-gapped pipeline: open and verify an archive,
// load its images into a registry, relocate every image reference, apply
// charts and manifests, wait for readiness and record the release. It also
// upgrades, rolls back and uninstalls recorded deployments.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
)

// Package is an opened archive whose signature was checked.
type Package struct {
	Archive     *bundle.Archive
	Description *bundle.Description
	Root        ocispec.Descriptor
	// SignedBy are the trusted key IDs that signed the package; empty when
	// verification was waived.
	SignedBy []string
}

// Close releases the archive.
func (p *Package) Close() error { return p.Archive.Close() }

// Open opens the archive at path with [bundle.OpenVerified]: every
// structural check of verify, and the signature unless o.SkipSignature
// waives it (the caller logs that).
func Open(ctx context.Context, path string, o bundle.OpenOptions) (*Package, error) {
	a, v, err := bundle.OpenVerified(ctx, path, o)
	if err != nil {
		return nil, err
	}
	p := &Package{Archive: a, Root: a.Root()}
	if p.Description, err = a.Description(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if v != nil {
		p.SignedBy = v.KeyIDs
	}
	return p, nil
}

// LoadOptions configure [Load].
type LoadOptions struct {
	// Registry is the target: HOST[:PORT][/PREFIX...].
	Registry string
	// Flatten keeps only the last path element of each image repository.
	Flatten bool
	Remote  oci.RemoteOptions
	// Concurrency bounds parallel image pushes; if <= 0, 4 is used.
	Concurrency int
	Progress    func(oci.Event)
	// Charts also pushes every chart as an OCI Helm chart to
	// HOST/PREFIX/charts/CHART:VERSION with default values pointing at the
	// loaded images (see ChartRepository).
	Charts bool
}

// LoadResult reports a load.
type LoadResult struct {
	// Map relocates every source image reference to its target, pinned by
	// digest.
	Map  images.Map
	Push *oci.PushResult
	// Charts are the charts pushed (with LoadOptions.Charts).
	Charts []ChartPush
	// Base reports, for a delta package, how the omitted blobs were found
	// in the registry; nil otherwise.
	Base *oci.EnsureResult
}

// ParseRegistry splits [https://|http://]HOST[/PREFIX] into an
// images.Destination.
func ParseRegistry(s string, flatten bool) (images.Destination, error) {
	return images.ParseDestination(s, flatten)
}

// ErrImageCollision: two source repositories would share one target
// repository (only possible with Flatten) and overwrite each other's tags.
var ErrImageCollision = errors.New("image target collision")

// Relocation computes the image map for a package and a target registry
// without moving anything. Two source repositories that map to one target
// repository are refused.
func Relocation(d *bundle.Description, dest images.Destination) (images.Map, error) {
	m := images.Map{}
	from := map[string]string{} // target repository -> source repository
	for _, im := range d.Images {
		t, err := images.Target(im.Ref, dest, im.Digest)
		if err != nil {
			return nil, fmt.Errorf("relocating %s: %w", im.Ref, err)
		}
		m[im.Ref] = t
		repo, _, _ := strings.Cut(t, "@")
		src := sourceRepo(im.Ref)
		if other, ok := from[repo]; ok && other != src {
			return nil, fmt.Errorf("%w: %s and %s would both be pushed to %s: drop --flatten (the target path then keeps the source registry and path)", ErrImageCollision, other, src, repo)
		}
		from[repo] = src
	}
	return m, nil
}

// sourceRepo is ref without tag and digest.
func sourceRepo(ref string) string {
	r, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(r, ':'); i > strings.LastIndexByte(r, '/') {
		r = r[:i]
	}
	return r
}

// Load pushes every image of the package into the target registry
// straight out of the archive, skipping blobs the registry already has.
func Load(ctx context.Context, p *Package, o LoadOptions) (*LoadResult, error) {
	dest, err := ParseRegistry(o.Registry, o.Flatten)
	if err != nil {
		return nil, err
	}
	o.Remote = o.Remote.WithAddress(dest.Address())
	m, err := Relocation(p.Description, dest)
	if err != nil {
		return nil, err
	}
	descs := map[string]ocispec.Descriptor{}
	for _, d := range p.Archive.Images() {
		descs[d.Annotations[bundle.AnnotationRefName]] = d
	}
	var push []oci.PushImage
	for _, im := range p.Description.Images {
		d, ok := descs[im.Ref]
		if !ok {
			return nil, fmt.Errorf("image %s is listed in the package description but not in its index: the archive is inconsistent; rebuild it", im.Ref)
		}
		t, err := images.TargetTag(im.Ref, dest)
		if err != nil {
			return nil, err
		}
		push = append(push, oci.PushImage{Descriptor: d, Target: t})
	}
	tags, referrers, err := materialPushes(p.Archive.Images(), p.Description, dest)
	if err != nil {
		return nil, err
	}
	var src content.ReadOnlyStorage = p.Archive
	var base *oci.EnsureResult
	if p.Description.Delta != nil {
		if src, base, err = deltaSource(ctx, p, dest.Host, slices.Concat(push, tags, referrers), o.Remote); err != nil {
			return nil, err
		}
	}
	tags, merges, err := keepSiteSignatures(ctx, src, tags, o.Remote)
	if err != nil {
		return nil, err
	}
	push = append(push, tags...)
	res, err := oci.Push(ctx, src, push, oci.PushOptions{RemoteOptions: o.Remote, Concurrency: o.Concurrency, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	for _, m := range merges {
		if err := m.push(ctx); err != nil {
			return nil, err
		}
		res.ManifestsPushed++
	}
	if len(referrers) > 0 {
		// After their subjects, one at a time (see materialPushes).
		rres, err := oci.Push(ctx, src, referrers, oci.PushOptions{RemoteOptions: o.Remote, Concurrency: 1, Progress: o.Progress})
		res.Add(rres)
		if err != nil {
			return nil, fmt.Errorf("pushing the images' OCI referrers: %w", err)
		}
	}
	out := &LoadResult{Map: m, Push: res, Base: base}
	if o.Charts {
		if out.Charts, err = loadCharts(ctx, p, dest, m, o, res); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ErrBaseMissing: a delta package leaves out blobs of its base that the
// target registry does not hold.
var ErrBaseMissing = errors.New("delta base missing")

// deltaSource checks, before anything is pushed, that the registry at host
// holds every blob the delta package p leaves out, in the repository that
// needs it (mounting it from another repository if needed), and returns a
// source serving the archive plus the omitted manifests read back from the
// registry.
func deltaSource(ctx context.Context, p *Package, host string, push []oci.PushImage, ro oci.RemoteOptions) (content.ReadOnlyStorage, *oci.EnsureResult, error) {
	delta := p.Description.Delta
	omitted := make(map[digest.Digest]bool, len(delta.Omitted))
	for _, d := range delta.Omitted {
		omitted[d] = true
	}
	var needs []oci.Need
	for _, im := range push {
		repo := targetRepo(im.Target, host)
		seen := map[digest.Digest]bool{}
		queue := []ocispec.Descriptor{im.Descriptor}
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			if !p.Archive.Has(d.Digest) {
				if !omitted[d.Digest] {
					return nil, nil, fmt.Errorf("%w: %s (%s) of image %s is not in the archive and not listed as omitted: the archive is incomplete; rebuild it", bundle.ErrMissingBlob, d.Digest, d.MediaType, im.Target)
				}
				needs = append(needs, oci.Need{Repo: repo, Descriptor: d})
				continue
			}
			children, err := content.Successors(ctx, p.Archive, d)
			if err != nil {
				return nil, nil, err
			}
			queue = append(queue, children...)
		}
	}
	res, err := oci.Ensure(ctx, host, needs, ro)
	if err != nil {
		return nil, nil, fmt.Errorf("checking that %s holds the base of this delta: %w", host, err)
	}
	if n := len(res.Missing); n > 0 {
		first := res.Missing[0]
		return nil, res, fmt.Errorf("%w: this delta needs %d blobs of base %s that registry %s lacks (first: %s in %s): load the base package first, or build a full package",
			ErrBaseMissing, n, delta.Base, host, first.Descriptor.Digest, first.Repo)
	}
	return &overlay{Archive: p.Archive, known: res.Manifests}, res, nil
}

// targetRepo returns the repository of target (host/repo:tag).
func targetRepo(target, host string) string {
	r := strings.TrimPrefix(target, host+"/")
	if i := strings.LastIndexByte(r, ':'); i > strings.LastIndexByte(r, '/') {
		r = r[:i]
	}
	return r
}

// overlay is an archive plus manifests it leaves out.
type overlay struct {
	*bundle.Archive
	known map[digest.Digest][]byte
}

func (o *overlay) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	if _, ok := o.known[d.Digest]; ok {
		return true, nil
	}
	return o.Archive.Exists(ctx, d)
}

func (o *overlay) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if !o.Archive.Has(d.Digest) {
		if b, ok := o.known[d.Digest]; ok {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	return o.Archive.Fetch(ctx, d)
}
