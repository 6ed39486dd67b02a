package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// DefaultConcurrency bounds parallel transfers when an options struct
// leaves Concurrency at zero.
const DefaultConcurrency = 4

// maxManifestBytes bounds manifests and configs read into memory.
const maxManifestBytes = 4 << 20

// Media types this package reads as graphs. Docker v2 types are copied as
// they are, so digests never change.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest || isIndex(mt) ||
		mt == "application/vnd.oci.artifact.manifest.v1+json"
}

// PullOptions configures Pull.
type PullOptions struct {
	RemoteOptions
	// Platforms ("linux/amd64", "linux/arm64/v8") to keep from multi-arch
	// images; empty keeps all. A single-platform image must match one.
	Platforms []string
	// Concurrency bounds parallel images and blob transfers;
	// DefaultConcurrency if zero.
	Concurrency int
	// Progress, if set, receives events (one call at a time).
	Progress func(Event)
	// Deferred, if set, chooses blobs to leave for later instead of
	// transferring them (see [Deferred]).
	Deferred *Deferred
}

// Image is a pulled image.
type Image struct {
	// Ref is the normalized source reference (docker.io/library/nginx:1.27).
	Ref string
	// Descriptor is the image's root in the destination: the source root,
	// or a new index when a multi-arch index was filtered.
	Descriptor ocispec.Descriptor
	// SourceDigest is the source index digest when the index was
	// filtered to the requested platforms; empty otherwise.
	SourceDigest digest.Digest
	// Platforms held by the pulled image ("linux/amd64"); empty for
	// non-image artifacts.
	Platforms []string
}

// Pull copies the images named by refs, with their whole graphs, into dst
// and tags each in dst with its normalized reference. Blobs shared by
// several images are fetched once. With o.Platforms, multi-arch indexes
// are replaced by a new index holding only the matching manifests.
func Pull(ctx context.Context, refs []string, dst oras.Target, o PullOptions) ([]Image, error) {
	want := make([]ocispec.Platform, 0, len(o.Platforms))
	for _, s := range o.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		want = append(want, p)
	}
	srcs := make([]source, len(refs))
	for i, r := range refs {
		s, err := parseSource(r, o.Mirrors)
		if err != nil {
			return nil, err
		}
		srcs[i] = s
	}
	c, err := newClient(o.RemoteOptions)
	if err != nil {
		return nil, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	p := &puller{
		client:   c,
		dst:      dst,
		want:     want,
		conc:     conc,
		retries:  o.retries(),
		flight:   newFlight(),
		sem:      semaphore.NewWeighted(int64(conc)),
		progress: newProgress(o.Progress),
		deferred: o.Deferred,
	}
	images := make([]Image, len(srcs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, s := range srcs {
		g.Go(func() error {
			img, err := p.pull(gctx, s)
			images[i] = img
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, c.annotate(err)
	}
	return images, nil
}

type puller struct {
	client   *client
	dst      oras.Target
	want     []ocispec.Platform
	conc     int
	retries  int
	flight   *flight
	sem      *semaphore.Weighted
	progress *progress
	deferred *Deferred
}

func (p *puller) pull(ctx context.Context, s source) (Image, error) {
	what := "pulling " + s.ref
	repo := p.client.repository(s.host, s.repo)
	root, raw, err := fetchReference(ctx, repo, s.reference)
	if err != nil {
		return Image{}, explain(what, s.where(), err)
	}
	img := Image{Ref: s.ref, Descriptor: root}
	roots := []ocispec.Descriptor{root}
	known := map[digest.Digest][]byte{root.Digest: raw}
	var newIndex []byte

	switch {
	case isIndex(root.MediaType):
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return Image{}, fmt.Errorf("%s: parsing index %s: %w", what, root.Digest, err)
		}
		img.Platforms = listPlatforms(idx)
		if len(p.want) == 0 {
			break
		}
		kept, b, dropped, err := filterIndex(idx, root.MediaType, p.want)
		if err != nil {
			return Image{}, fmt.Errorf("%s: writing filtered index: %w", what, err)
		}
		if len(kept) == 0 {
			has := "no platform information"
			if len(img.Platforms) > 0 {
				has = strings.Join(img.Platforms, ", ")
			}
			return Image{}, fmt.Errorf("%s: %w: want %s, the image has %s: choose among those platforms",
				what, ErrNoPlatform, strings.Join(platformStrings(p.want), ", "), has)
		}
		img.Platforms = listPlatforms(ocispec.Index{Manifests: kept})
		if dropped {
			img.SourceDigest = root.Digest
			img.Descriptor = content.NewDescriptorFromBytes(root.MediaType, b)
			roots, newIndex = kept, b
		}
	case root.MediaType == ocispec.MediaTypeImageManifest || root.MediaType == mediaTypeDockerManifest:
		plat, err := manifestPlatform(ctx, repo, raw, known)
		if err != nil {
			return Image{}, explain(what, s.where(), err)
		}
		if plat == nil {
			break // not a container image (a chart, a signature...)
		}
		img.Platforms = []string{FormatPlatform(*plat)}
		if len(p.want) > 0 && !matches(plat, p.want) {
			return Image{}, fmt.Errorf("%s: %w: the image is %s only, want %s: drop it or pull a multi-arch tag",
				what, ErrNoPlatform, img.Platforms[0], strings.Join(platformStrings(p.want), ", "))
		}
	}

	store := &pullStore{Storage: p.dst, p: p, src: repo, image: s.ref, what: what, where: s.where()}
	opts := oras.CopyGraphOptions{
		Concurrency: p.conc,
		OnCopySkipped: func(_ context.Context, d ocispec.Descriptor) error {
			p.progress.emit(Event{Kind: BlobSkipped, Image: s.ref, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size})
			return nil
		},
	}
	src := lazySource{ReadOnlyStorage: repo, known: known}
	for _, r := range roots {
		if err := oras.CopyGraph(ctx, src, store, r, opts); err != nil {
			return Image{}, explain(what, s.where(), err)
		}
	}
	if newIndex != nil {
		if err := store.pushBytes(ctx, img.Descriptor, newIndex); err != nil {
			return Image{}, fmt.Errorf("%s: storing filtered index: %w", what, err)
		}
	}
	if err := p.dst.Tag(ctx, img.Descriptor, s.ref); err != nil {
		return Image{}, fmt.Errorf("%s: tagging in destination: %w", what, err)
	}
	p.progress.emit(Event{Kind: ImageDone, Image: s.ref, Digest: img.Descriptor.Digest, MediaType: img.Descriptor.MediaType, Size: img.Descriptor.Size})
	return img, nil
}

func platformStrings(ps []ocispec.Platform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = FormatPlatform(p)
	}
	return out
}

// fetchReference resolves reference and reads the manifest it names.
func fetchReference(ctx context.Context, repo *remote.Repository, reference string) (ocispec.Descriptor, []byte, error) {
	desc, rc, err := repo.FetchReference(ctx, reference)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer rc.Close()
	raw, err := content.ReadAll(rc, desc)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return desc, raw, nil
}

// manifestPlatform reads the platform from an image manifest's config; nil
// when the manifest is not a container image. The config is added to known.
func manifestPlatform(ctx context.Context, f content.Fetcher, raw []byte, known map[digest.Digest][]byte) (*ocispec.Platform, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if m.Config.MediaType != ocispec.MediaTypeImageConfig && m.Config.MediaType != mediaTypeDockerConfig {
		return nil, nil
	}
	if m.Config.Size > maxManifestBytes {
		return nil, fmt.Errorf("image config %s is %d bytes: too large", m.Config.Digest, m.Config.Size)
	}
	b, err := content.FetchAll(ctx, f, m.Config)
	if err != nil {
		return nil, fmt.Errorf("fetching image config: %w", err)
	}
	known[m.Config.Digest] = b
	var cfg imageConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("parsing image config %s: %w", m.Config.Digest, err)
	}
	if cfg.OS == "" || cfg.Architecture == "" {
		return nil, nil
	}
	return &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}, nil
}

// pullStore is the destination of one image's CopyGraph. Blobs shared with
// other images of the same Pull are transferred once: later copies wait
// for the first and then find the blob present.
type pullStore struct {
	content.Storage
	p     *puller
	src   content.Fetcher
	image string
	what  string
	where string
}

func (s *pullStore) Push(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if d := s.p.deferred; d != nil && !isManifest(desc.MediaType) && d.Defer != nil && d.Defer(desc) {
		// r is a lazy reader: nothing was requested yet.
		d.record(deferredBlob{desc: desc, src: s.src, image: s.image, what: s.what, where: s.where,
			retries: s.p.retries, client: s.p.client, prog: s.p.progress})
		return nil
	}
	key := desc.Digest.String()
	for {
		c, lead := s.p.flight.begin(key)
		if !lead {
			err := c.wait(ctx)
			if err == nil {
				s.p.progress.emit(Event{Kind: BlobSkipped, Image: s.image, Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size})
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // the first transfer failed: try ourselves
		}
		err := s.transfer(ctx, desc, r)
		s.p.flight.end(key, c, err)
		return err
	}
}

func (s *pullStore) transfer(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if ok, err := s.Storage.Exists(ctx, desc); err == nil && ok {
		s.p.progress.emit(Event{Kind: BlobSkipped, Image: s.image, Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size})
		return nil
	}
	if err := s.p.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.p.sem.Release(1)
	s.p.progress.emit(Event{Kind: BlobStart, Image: s.image, Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size})
	first := true
	err := withRetry(ctx, s.p.retries, func() error {
		body := r
		if !first {
			rc, err := s.src.Fetch(ctx, desc)
			if err != nil {
				return err
			}
			defer rc.Close()
			body = rc
		}
		first = false
		err := s.Storage.Push(ctx, desc, body)
		if errors.Is(err, errdef.ErrAlreadyExists) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	s.p.progress.emit(Event{Kind: BlobDone, Image: s.image, Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size})
	return nil
}

// pushBytes stores a small blob (the filtered index) unless present.
func (s *pullStore) pushBytes(ctx context.Context, desc ocispec.Descriptor, b []byte) error {
	return s.Push(ctx, desc, bytes.NewReader(b))
}
