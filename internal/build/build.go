// Package build is the connected-side pipeline: it turns a package spec
// into one signed archive. It fetches and renders charts, collects
// manifests, discovers every image they reference, pulls the images
// (keeping the requested platforms), assembles the package graph and
// writes the archive.
package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/inventory"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sign"
)

// Options configure [Build].
type Options struct {
	// Spec is skiff.yaml or the directory holding it; "" means ".".
	Spec string
	// Output is the archive path; "" means <name>-<version>.skiff in the
	// current directory.
	Output string
	// Version, when set, overrides metadata.version.
	Version string
	// Platforms, when set, override the spec's platforms.
	Platforms []string
	// KubeVersion, when set, overrides the spec's kubeVersion.
	KubeVersion string
	// Set are "component.key=value" values overriding chart values at
	// build time (they are carried as the package's defaults).
	Set []string
	// Concurrency bounds parallel image pulls; if <= 0, 4 is used.
	Concurrency int
	// Remote configures registry access (auth, mirrors, TLS, proxies).
	Remote oci.RemoteOptions
	// Chart configures chart repository access.
	Chart chart.FetchOptions
	// SignKey, when set, signs the archive.
	SignKey *sign.PrivateKey
	// Progress receives events; nil discards them.
	Progress func(Event)
	// CreatedBy names the tool ("skiff v1.2.3").
	CreatedBy string
	// StagingDir holds per-output staging layouts that make an interrupted
	// build resumable; "" means the user cache directory (skiff/build).
	StagingDir string
	// DeltaFrom, when set, builds a delta: an inventory file (skiff
	// inventory) or an older archive; image blobs it holds are left out
	// and listed in the description's Delta.
	DeltaFrom string
	// WithDeps bundles the package's dependencies, chosen from DepArchives
	// (archives or directories of *.skiff), and writes skiff.lock.
	WithDeps    bool
	DepArchives []string
	// UpdateDeps ignores skiff.lock: every dependency is resolved again
	// (the highest version in range) and the lock rewritten. Without it a
	// locked dependency must resolve to exactly the locked archive.
	UpdateDeps bool
	// DepSource, when set, offers more candidate archives (from a hub).
	DepSource DepSource
	// DepOpen is how the dependency archives are opened: the keys that
	// must have signed them, or an explicit waiver.
	DepOpen bundle.OpenOptions
	// NoSBOM skips the CycloneDX SBOMs otherwise generated for every
	// image platform and for the package's charts and files.
	NoSBOM bool
}

// Event reports progress of a build.
type Event struct {
	// Stage is "chart", "manifests", "images", "pull", "signatures",
	// "sbom", "write" or "sign".
	Stage string
	// Message is a human sentence about the step.
	Message string
	// Pull carries image pull progress when Stage is "pull".
	Pull *oci.Event
}

// Result describes a written archive.
type Result struct {
	Path        string
	Root        ocispec.Descriptor
	Description *bundle.Description
	Blobs       int
	Bytes       int64
	// Omitted is the number of blobs a delta left out.
	Omitted int
	// Warnings are what the user should know about the archive that did
	// not stop the build: image signatures carried but not verified
	// (keyless ones), referrers left behind.
	Warnings []string
}

// Build runs the whole pipeline and writes the archive atomically.
func Build(ctx context.Context, o Options) (*Result, error) {
	p, err := NewPlan(ctx, PlanOptions{Spec: o.Spec, Version: o.Version, KubeVersion: o.KubeVersion, Platforms: o.Platforms, Set: o.Set, Chart: o.Chart, Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	var base *inventory.Inventory
	if o.DeltaFrom != "" {
		if base, err = LoadBase(ctx, o.DeltaFrom); err != nil {
			return nil, err
		}
	}
	out := o.Output
	if out == "" {
		out = fmt.Sprintf("%s-%s.skiff", p.Spec.Metadata.Name, p.Spec.Metadata.Version)
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	// Manifests and indexes are staged in a directory named for the
	// output; every other image blob is fetched straight into its place in
	// the archive (bundle.Placed), whose partial file is kept, with a
	// journal in the staging directory, when the build fails or is
	// interrupted: the next build of the same output resumes, and blobs
	// already pulled are not fetched again.
	stage, err := bundle.StagingDir(o.StagingDir, "build", out)
	if err != nil {
		return nil, err
	}
	// Once every blob is in the archive, the staging directory is removed
	// while the archive is synced (both wait on the disk).
	var removed chan struct{}
	release := func() {
		removed = make(chan struct{})
		go func() {
			os.RemoveAll(stage)
			close(removed)
		}()
	}
	defer func() {
		if removed != nil {
			<-removed
		}
	}()
	store, err := newStagingStore(ctx, stage)
	if err != nil {
		return nil, fmt.Errorf("opening staging layout: %w", err)
	}

	emit(o.Progress, Event{Stage: "images", Message: fmt.Sprintf("pulling %d images for %s", len(p.Images), strings.Join(p.Platforms, ", "))})
	// Image manifests first; layers and configs once the archive is laid
	// out (fill).
	deferred := &oci.Deferred{Defer: func(ocispec.Descriptor) bool { return true }}
	store.deferred = deferred
	pulled, err := oci.Pull(ctx, p.Images, store, oci.PullOptions{
		RemoteOptions: o.Remote,
		Platforms:     p.Platforms,
		Concurrency:   o.Concurrency,
		Deferred:      deferred,
		Progress: func(e oci.Event) {
			if o.Progress != nil {
				ev := e
				o.Progress(Event{Stage: "pull", Pull: &ev})
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if err := verifySignatures(ctx, p.Spec, pulled, o.Remote); err != nil {
		return nil, err
	}
	emit(o.Progress, Event{Stage: "signatures", Message: "carrying the images' signatures, attestations and referrers"})
	carried, err := carryMaterial(ctx, store, pulled, o.Remote, o.Concurrency)
	if err != nil {
		return nil, err
	}

	d := p.description(o.CreatedBy)
	var imgDescs []ocispec.Descriptor
	if o.WithDeps {
		deps, err := resolveDeps(ctx, p.Spec, o.DepArchives, o.DepSource, o.DepOpen, o.UpdateDeps)
		if err != nil {
			return nil, err
		}
		defer func() {
			for _, r := range deps {
				r.archive.Close()
			}
		}()
		roots, err := bundleDeps(ctx, store, deps, d)
		if err != nil {
			return nil, err
		}
		imgDescs = append(imgDescs, roots...)
		if err := writeLock(p.Spec, deps); err != nil {
			return nil, err
		}
	}
	var sbomImages []sbom.Image
	for _, im := range pulled {
		sbomImages = append(sbomImages, sbom.Image{Ref: im.Ref, Descriptor: im.Descriptor})
		desc := im.Descriptor
		desc.Annotations = map[string]string{bundle.AnnotationRefName: im.Ref}
		if im.SourceDigest != "" {
			desc.Annotations[bundle.AnnotationSourceDigest] = im.SourceDigest.String()
		}
		imgDescs = append(imgDescs, desc)
		d.Images = append(d.Images, bundle.Image{
			Ref: im.Ref, Digest: im.Descriptor.Digest, MediaType: im.Descriptor.MediaType,
			Size: im.Descriptor.Size, Platforms: im.Platforms, SourceDigest: im.SourceDigest,
		})
	}
	imgDescs = append(imgDescs, carried.descs...)
	var omit func(digest.Digest) bool
	if base != nil {
		// The omitted list is part of the description, so it is known
		// before the package is assembled.
		set, err := deltaDescription(ctx, store, imgDescs, base, d)
		if err != nil {
			return nil, err
		}
		omit = func(dg digest.Digest) bool { return set[dg] }
	}
	layers, err := p.layers(d)
	if err != nil {
		return nil, err
	}

	// The image blobs come first in the archive, sorted by digest: with
	// the manifests at hand, each has its place before its content comes.
	images, err := bundle.ImageBlobs(ctx, store, imgDescs, omit)
	if err != nil {
		return nil, err
	}
	placed, err := bundle.CreatePlaced(ctx, out, images, bundle.PlacedOptions{Journal: filepath.Join(stage, "placed")})
	if err != nil {
		return nil, err
	}
	defer placed.Close() // keeps the partial archive unless it was finished
	store.placed = placed
	if err := fill(ctx, placed, store, deferred, !o.NoSBOM, o.Concurrency, o.Progress); err != nil {
		return nil, err
	}

	if !o.NoSBOM {
		emit(o.Progress, Event{Stage: "sbom", Message: "cataloging image layers for SBOMs"})
		sl, entries, err := sbom.Layers(ctx, fetchers{placed, store}, sbomImages, d, sbom.LayersOptions{
			Options:     sbom.Options{Tool: o.CreatedBy, TempDir: stage},
			Concurrency: o.Concurrency,
			Progress:    func(msg string) { emit(o.Progress, Event{Stage: "sbom", Message: msg}) },
		})
		if err != nil {
			return nil, err
		}
		layers, d.SBOMs = append(layers, sl...), entries
	}
	root, err := bundle.Assemble(ctx, store, d, imgDescs, layers)
	if err != nil {
		return nil, fmt.Errorf("assembling package: %w", err)
	}

	var sigs []ocispec.Descriptor
	if o.SignKey != nil {
		emit(o.Progress, Event{Stage: "sign", Message: "signing with key " + o.SignKey.ID()})
		env, err := sign.Sign(ctx, o.SignKey, sign.Subject{Name: d.Name + ":" + d.Version, Digest: root.Digest}, Predicate(d))
		if err != nil {
			return nil, err
		}
		sd, err := bundle.PushSignature(ctx, store, root, env)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, sd)
	}

	emit(o.Progress, Event{Stage: "write", Message: "writing " + out})
	wr, err := placed.Finish(ctx, store, root, bundle.WriteOptions{Signatures: sigs, Omit: omit, Copied: release})
	if err != nil {
		return nil, err
	}
	return &Result{Path: out, Root: root, Description: d, Blobs: wr.Blobs, Bytes: wr.Bytes, Omitted: wr.Omitted, Warnings: carried.warnings()}, nil
}

// Predicate is the in-toto predicate signed with a package: what a
// verifier may want to know without opening the archive.
func Predicate(d *bundle.Description) map[string]any {
	imgs := make([]string, 0, len(d.Images))
	for _, im := range d.Images {
		imgs = append(imgs, im.Ref+"@"+im.Digest.String())
	}
	slices.Sort(imgs)
	return map[string]any{"name": d.Name, "version": d.Version, "images": imgs, "createdBy": d.CreatedBy}
}

func emit(f func(Event), e Event) {
	if f != nil {
		f(e)
	}
}

// ErrBadVersion is returned for an invalid --version.
var ErrBadVersion = errors.New("invalid version")

func checkVersion(v string) error {
	if _, err := semver.StrictNewVersion(v); err != nil {
		return fmt.Errorf("%w %q: use a semantic version such as 1.2.3", ErrBadVersion, v)
	}
	return nil
}
