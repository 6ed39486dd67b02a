package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// PushOptions configures Push.
type PushOptions struct {
	RemoteOptions
	// Concurrency bounds parallel images and blob uploads;
	// DefaultConcurrency if zero.
	Concurrency int
	// Progress, if set, receives events (one call at a time).
	Progress func(Event)
}

// PushImage is one graph to push: its root and where it goes.
type PushImage struct {
	Descriptor ocispec.Descriptor
	// Target is host[:port]/repository[:tag]. Without a tag the image is
	// pushed by digest only.
	Target string
}

// PushResult counts what Push moved. Blob counts exclude manifests and
// count each blob once per registry, however many repositories it went
// to: as pushed if it was uploaded at all, else as mounted if it was
// mounted from another repository, else as skipped (already there).
type PushResult struct {
	BlobsPushed     int   `json:"blobsPushed"`
	BlobsSkipped    int   `json:"blobsSkipped"`
	BlobsMounted    int   `json:"blobsMounted"`
	BytesPushed     int64 `json:"bytesPushed"`
	BytesSkipped    int64 `json:"bytesSkipped"`
	ManifestsPushed int   `json:"manifestsPushed"`
}

// Add adds the counts of o to r.
func (r *PushResult) Add(o *PushResult) {
	if o == nil {
		return
	}
	r.BlobsPushed += o.BlobsPushed
	r.BlobsSkipped += o.BlobsSkipped
	r.BlobsMounted += o.BlobsMounted
	r.BytesPushed += o.BytesPushed
	r.BytesSkipped += o.BytesSkipped
	r.ManifestsPushed += o.ManifestsPushed
}

// Push copies each image's graph from src to its target repository and
// tags it. Blobs the repository already has are skipped; a blob that this
// Push already put into another repository of the same registry is
// mounted instead of uploaded; concurrent uploads of one blob are done
// once. Transient failures are retried with backoff. A repeated Push of
// the same images uploads no blobs.
func Push(ctx context.Context, src content.ReadOnlyStorage, images []PushImage, o PushOptions) (*PushResult, error) {
	targets := make([]target, len(images))
	for i, img := range images {
		t, err := parseTarget(img.Target)
		if err != nil {
			return nil, err
		}
		if t.digest != "" && t.digest != img.Descriptor.Digest.String() {
			return nil, fmt.Errorf("push target %s names digest %s but the image is %s: drop the digest from the target",
				img.Target, t.digest, img.Descriptor.Digest)
		}
		targets[i] = t
	}
	c, err := newClient(o.RemoteOptions)
	if err != nil {
		return nil, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	p := &pusher{
		client:   c,
		src:      sourceStorage{src},
		conc:     conc,
		retries:  o.retries(),
		flight:   newFlight(),
		sem:      semaphore.NewWeighted(int64(conc)),
		progress: newProgress(o.Progress),
		have:     map[string]map[digest.Digest][]string{},
		outcomes: map[string]blobOutcome{},
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, img := range images {
		g.Go(func() error { return p.push(gctx, img.Descriptor, targets[i]) })
	}
	err = c.annotate(g.Wait())
	p.mu.Lock()
	res := p.res
	for _, o := range p.outcomes {
		switch o.state {
		case blobPushed:
			res.BlobsPushed++
			res.BytesPushed += o.size
		case blobMounted:
			res.BlobsMounted++
		case blobSkipped:
			res.BlobsSkipped++
			res.BytesSkipped += o.size
		}
	}
	p.mu.Unlock()
	return &res, err
}

type pusher struct {
	client   *client
	src      content.ReadOnlyStorage
	conc     int
	retries  int
	flight   *flight
	sem      *semaphore.Weighted
	progress *progress

	mu       sync.Mutex
	have     map[string]map[digest.Digest][]string // host → digest → repos holding it
	outcomes map[string]blobOutcome                // host|digest → what happened to the blob
	res      PushResult                            // manifests; blobs are counted from outcomes
}

// blobState is what happened to a blob; a larger state wins when the
// blob went to several repositories.
type blobState int

const (
	blobSkipped blobState = iota + 1
	blobMounted
	blobPushed
)

type blobOutcome struct {
	state blobState
	size  int64
}

// outcome records what happened to blob d at host.
func (p *pusher) outcome(host string, d ocispec.Descriptor, st blobState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := host + "|" + d.Digest.String()
	if o := p.outcomes[key]; st > o.state {
		p.outcomes[key] = blobOutcome{state: st, size: d.Size}
	}
}

// record notes that repo at host holds d.
func (p *pusher) record(host, repo string, d digest.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.have[host]
	if m == nil {
		m = map[digest.Digest][]string{}
		p.have[host] = m
	}
	for _, r := range m[d] {
		if r == repo {
			return
		}
	}
	m[d] = append(m[d], repo)
}

// holder returns whether repo holds d, and otherwise another repository
// of the same registry known to hold it ("" if none).
func (p *pusher) holder(host, repo string, d digest.Digest) (here bool, other string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.have[host][d] {
		if r == repo {
			return true, ""
		}
		other = r
	}
	return false, other
}

func (p *pusher) count(f func(*PushResult)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.res)
}

func (p *pusher) push(ctx context.Context, root ocispec.Descriptor, t target) error {
	what := "pushing " + t.raw
	s := &pushStore{p: p, repo: p.client.repository(t.host, t.repo), t: t, root: root}
	opts := oras.CopyGraphOptions{Concurrency: p.conc, OnCopySkipped: s.skipped}
	if err := oras.CopyGraph(ctx, lazySource{ReadOnlyStorage: p.src}, s, root, opts); err != nil {
		return explain(what, t.host, err)
	}
	if t.tag != "" {
		if !s.tagged {
			raw, err := content.FetchAll(ctx, p.src, root)
			if err != nil {
				return fmt.Errorf("%s: reading manifest %s from the source: %w", what, root.Digest, err)
			}
			if err := s.pushManifest(ctx, root, raw, t.tag); err != nil {
				return explain(what, t.host, err)
			}
		}
		got, err := s.repo.Resolve(ctx, t.tag)
		if err != nil {
			return explain(what, t.host, err)
		}
		if got.Digest != root.Digest {
			return fmt.Errorf("%s: %w: pushed %s, the registry has %s: the registry rewrote the manifest; use one that stores manifests unchanged",
				what, ErrDigestChanged, root.Digest, got.Digest)
		}
	}
	p.progress.emit(Event{Kind: ImageDone, Image: t.raw, Digest: root.Digest, MediaType: root.MediaType, Size: root.Size})
	return nil
}

// pushStore is the destination of one image's CopyGraph: one repository,
// with knowledge shared across the whole Push.
type pushStore struct {
	p      *pusher
	repo   *remote.Repository
	t      target
	root   ocispec.Descriptor
	tagged bool // root was pushed with t.tag
}

func (s *pushStore) event(k EventKind, d ocispec.Descriptor) {
	s.p.progress.emit(Event{Kind: k, Image: s.t.raw, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size})
}

func (s *pushStore) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	return s.repo.Fetch(ctx, d)
}

func (s *pushStore) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	if here, _ := s.p.holder(s.t.host, s.t.repo, d.Digest); here {
		return true, nil
	}
	ok, err := s.repo.Exists(ctx, d)
	if err != nil {
		return false, err
	}
	if ok && isManifest(d.MediaType) {
		// A manifest the registry holds is skipped with its whole graph:
		// first confirm (HEAD) that every blob it refers to is there too,
		// so that an image whose blobs were lost (a sweep, a damaged
		// storage) is repaired rather than reported loaded.
		if ok, err = s.complete(ctx, d); err != nil {
			return false, err
		}
	}
	if ok {
		s.p.record(s.t.host, s.t.repo, d.Digest)
	}
	return ok, nil
}

// complete reports whether the repository holds every blob of manifest
// d's graph (as the source describes it).
func (s *pushStore) complete(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	children, err := content.Successors(ctx, s.p.src, d)
	if err != nil {
		return false, fmt.Errorf("reading %s from the source: %w", d.Digest, err)
	}
	for _, c := range children {
		ok, err := s.Exists(ctx, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// skipped accounts for a node the repository already had; for a manifest
// that is its whole sub-graph.
func (s *pushStore) skipped(ctx context.Context, d ocispec.Descriptor) error {
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		s.p.record(s.t.host, s.t.repo, d.Digest)
		s.event(BlobSkipped, d)
		if !isManifest(d.MediaType) {
			s.p.outcome(s.t.host, d, blobSkipped)
			return nil
		}
		children, err := content.Successors(ctx, s.p.src, d)
		if err != nil {
			return fmt.Errorf("reading %s from the source: %w", d.Digest, err)
		}
		for _, c := range children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(d)
}

func (s *pushStore) Push(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	if isManifest(d.MediaType) {
		raw, err := content.ReadAll(r, d)
		if err != nil {
			return err
		}
		tag := ""
		if s.t.tag != "" && d.Digest == s.root.Digest {
			tag = s.t.tag
		}
		return s.pushManifest(ctx, d, raw, tag)
	}
	key := s.t.host + "|" + d.Digest.String()
	for {
		c, lead := s.p.flight.begin(key)
		if !lead {
			// Another image is uploading this blob to this registry: wait,
			// then mount it from there (or find it here).
			if err := c.wait(ctx); err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		err := s.pushBlob(ctx, d)
		s.p.flight.end(key, c, err)
		return err
	}
}

func (s *pushStore) pushManifest(ctx context.Context, d ocispec.Descriptor, raw []byte, tag string) error {
	s.event(BlobStart, d)
	err := withRetry(ctx, s.p.retries, func() error {
		var err error
		if tag != "" {
			err = s.repo.PushReference(ctx, d, bytes.NewReader(raw), tag)
		} else {
			err = s.repo.Push(ctx, d, bytes.NewReader(raw))
		}
		var re *remote.ReferrersError
		if errors.As(err, &re) && re.IsReferrersIndexDelete() {
			// A manifest with a subject on a registry without the
			// referrers API: the referrers tag now names the new
			// index, but the old one could not be deleted (deletes
			// are often disabled). It is garbage, not a failure.
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if tag != "" {
		s.tagged = true
	}
	s.p.record(s.t.host, s.t.repo, d.Digest)
	s.p.count(func(r *PushResult) { r.ManifestsPushed++ })
	s.event(BlobDone, d)
	return nil
}

func (s *pushStore) pushBlob(ctx context.Context, d ocispec.Descriptor) error {
	here, other := s.p.holder(s.t.host, s.t.repo, d.Digest)
	if here {
		s.p.outcome(s.t.host, d, blobSkipped)
		s.event(BlobSkipped, d)
		return nil
	}
	if err := s.p.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.p.sem.Release(1)

	if other != "" {
		uploaded := false
		err := withRetry(ctx, s.p.retries, func() error {
			return s.repo.Mount(ctx, d, other, func() (io.ReadCloser, error) {
				// The registry declined to mount: upload instead.
				uploaded = true
				s.event(BlobStart, d)
				return s.p.src.Fetch(ctx, d)
			})
		})
		if err == nil {
			s.p.record(s.t.host, s.t.repo, d.Digest)
			if uploaded {
				s.p.outcome(s.t.host, d, blobPushed)
				s.event(BlobDone, d)
			} else {
				s.p.outcome(s.t.host, d, blobMounted)
				s.event(BlobMounted, d)
			}
			return nil
		}
		// Mounting failed outright (e.g. no pull access to the other
		// repository): fall back to a plain upload.
	}

	s.event(BlobStart, d)
	err := withRetry(ctx, s.p.retries, func() error {
		rc, err := s.p.src.Fetch(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		return s.repo.Push(ctx, d, rc)
	})
	if err != nil {
		return err
	}
	s.p.record(s.t.host, s.t.repo, d.Digest)
	s.p.outcome(s.t.host, d, blobPushed)
	s.event(BlobDone, d)
	return nil
}
