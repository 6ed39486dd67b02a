// Package install is the air-gapped pipeline: open and verify an archive,
// load its images into a registry, relocate every image reference, apply
// charts and manifests, wait for readiness and record the release. It also
// upgrades, rolls back and uninstalls recorded deployments.
package install

import (
	"context"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/sign"
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

// Open opens the archive at path and verifies its signature against
// trust. A nil trust waives signature verification (the caller logs
// that); it is never the default.
func Open(ctx context.Context, path string, trust *sign.Trust) (*Package, error) {
	a, err := bundle.Open(path)
	if err != nil {
		return nil, err
	}
	p := &Package{Archive: a, Root: a.Root()}
	if p.Description, err = a.Description(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if trust != nil {
		ids, err := CheckSignature(ctx, a, trust)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p.SignedBy = ids
	}
	return p, nil
}

// CheckSignature verifies that a trusted key signed the archive's root.
func CheckSignature(ctx context.Context, a *bundle.Archive, trust *sign.Trust) ([]string, error) {
	sigs, err := a.Signatures(ctx)
	if err != nil {
		return nil, err
	}
	envs := make([][]byte, len(sigs))
	for i, s := range sigs {
		envs[i] = s.Envelope
	}
	v, err := trust.Verify(envs, a.Root().Digest)
	if err != nil {
		return nil, err
	}
	return v.KeyIDs, nil
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
}

// LoadResult reports a load.
type LoadResult struct {
	// Map relocates every source image reference to its target, pinned by
	// digest.
	Map  images.Map
	Push *oci.PushResult
}

// ParseRegistry splits HOST[/PREFIX] into an images.Destination.
func ParseRegistry(s string, flatten bool) (images.Destination, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "/")
	if s == "" {
		return images.Destination{}, fmt.Errorf("no target registry: pass --registry HOST[:PORT][/PREFIX], e.g. --registry 127.0.0.1:5000/mirror")
	}
	host, prefix, _ := strings.Cut(s, "/")
	return images.Destination{Host: host, Prefix: prefix, Flatten: flatten}, nil
}

// Relocation computes the image map for a package and a target registry
// without moving anything.
func Relocation(d *bundle.Description, dest images.Destination) (images.Map, error) {
	m := images.Map{}
	for _, im := range d.Images {
		t, err := images.Target(im.Ref, dest, im.Digest)
		if err != nil {
			return nil, fmt.Errorf("relocating %s: %w", im.Ref, err)
		}
		m[im.Ref] = t
	}
	return m, nil
}

// Load pushes every image of the package into the target registry
// straight out of the archive, skipping blobs the registry already has.
func Load(ctx context.Context, p *Package, o LoadOptions) (*LoadResult, error) {
	dest, err := ParseRegistry(o.Registry, o.Flatten)
	if err != nil {
		return nil, err
	}
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
	res, err := oci.Push(ctx, p.Archive, push, oci.PushOptions{RemoteOptions: o.Remote, Concurrency: o.Concurrency, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	return &LoadResult{Map: m, Push: res}, nil
}
