package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/oci"
)

// stagingStore is the build's staging layout. Every blob in it is hashed
// once per build: blobs pushed by this run are verified by the layout as
// they arrive; a blob left by an earlier, interrupted run is re-checked
// the first time this run asks for it (and removed, to be fetched again,
// if it is damaged). It holds manifests and indexes (and blobs of bundled
// dependencies); layers and configs go straight into the archive (see
// fill, which copies the staged ones in too).
type stagingStore struct {
	*orasoci.Store
	mu sync.Mutex
	ok map[digest.Digest]bool
	// deferred are the blobs the pull left for later; placed, once laid
	// out, the archive they go into. Both count as held.
	deferred *oci.Deferred
	placed   *bundle.Placed
}

func newStagingStore(ctx context.Context, dir string) (*stagingStore, error) {
	s, err := orasoci.NewWithContext(ctx, dir)
	if err != nil {
		return nil, err
	}
	return &stagingStore{Store: s, ok: map[digest.Digest]bool{}}, nil
}

// Push stores a blob, verified against expected, and records it.
func (s *stagingStore) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := s.Store.Push(ctx, expected, r); err != nil {
		return err
	}
	s.record(expected.Digest)
	return nil
}

// Exists reports whether the layout holds a sound copy of target and,
// for a manifest or index, of its whole graph (a copy skips the graph of
// a node that exists). A blob an earlier run left is hashed here, once; a
// damaged one is removed so that it is fetched again.
func (s *stagingStore) Exists(ctx context.Context, target ocispec.Descriptor) (bool, error) {
	if (s.deferred != nil && s.deferred.Has(target.Digest)) || (s.placed != nil && s.placed.Done(target.Digest)) {
		return true, nil
	}
	found, err := s.Store.Exists(ctx, target)
	if err != nil || !found || s.verified(target.Digest) {
		return found, err
	}
	switch err := s.check(ctx, target); {
	case err == nil:
		s.record(target.Digest)
	case errors.Is(err, errDamaged):
		if derr := s.Store.Delete(ctx, target); derr != nil {
			return false, fmt.Errorf("removing the damaged staged blob %s: %w", target.Digest, derr)
		}
		return false, nil
	default:
		return false, err
	}
	children, err := content.Successors(ctx, s.Store, target)
	if err != nil {
		return false, err
	}
	for _, c := range children {
		if ok, err := s.Exists(ctx, c); err != nil || !ok {
			return false, err // copied again: the node itself is kept
		}
	}
	return true, nil
}

var errDamaged = errors.New("damaged staged blob")

// check hashes a staged blob against its descriptor.
func (s *stagingStore) check(ctx context.Context, d ocispec.Descriptor) error {
	if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
		return errDamaged
	}
	rc, err := s.Store.Fetch(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	v := d.Digest.Verifier()
	n, err := io.Copy(v, io.LimitReader(rc, d.Size+1))
	if err != nil {
		return fmt.Errorf("re-checking staged blob %s: %w", d.Digest, err)
	}
	if n != d.Size || !v.Verified() {
		return errDamaged
	}
	return nil
}

func (s *stagingStore) record(d digest.Digest) {
	s.mu.Lock()
	s.ok[d] = true
	s.mu.Unlock()
}

// verified reports whether this run verified a blob: pushed it, or
// re-checked the copy an earlier run left.
func (s *stagingStore) verified(d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok[d]
}

// fill puts every image blob in its place in the archive: deferred blobs
// are fetched from their registries straight into it, staged ones
// (manifests, dependencies' blobs) copied from the staging layout. Blobs
// an earlier run left in place (re-checked) are not fetched again. A
// deferred blob the archive leaves out (a delta omits it) is staged only
// when withOmitted is set, for the SBOMs.
func fill(ctx context.Context, placed *bundle.Placed, store *stagingStore, deferred *oci.Deferred, withOmitted bool, conc int, progress func(Event)) error {
	if conc <= 0 {
		conc = oci.DefaultConcurrency
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for _, d := range deferred.Blobs() {
		switch {
		case placed.Has(d.Digest) && placed.Done(d.Digest):
			emit(progress, Event{Stage: "pull", Pull: &oci.Event{Kind: oci.BlobSkipped, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size}})
		case placed.Has(d.Digest):
			g.Go(func() error {
				return deferred.Fetch(gctx, d.Digest, func(r io.Reader) error { return placed.Write(gctx, d, r) })
			})
		case withOmitted:
			g.Go(func() error {
				return deferred.Fetch(gctx, d.Digest, func(r io.Reader) error { return store.Store.Push(gctx, d, r) })
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// What is not deferred is staged (and small, mostly): copy it.
	return placed.Each(func(d ocispec.Descriptor) error {
		if placed.Done(d.Digest) || deferred.Has(d.Digest) {
			return nil
		}
		rc, err := store.Store.Fetch(ctx, d)
		if err != nil {
			return fmt.Errorf("reading staged blob %s: %w", d.Digest, err)
		}
		defer rc.Close()
		return placed.Write(ctx, d, rc)
	})
}

// fetchers reads from the first of its members that holds a blob.
type fetchers []content.ReadOnlyStorage

func (u fetchers) Fetch(ctx context.Context, target ocispec.Descriptor) (io.ReadCloser, error) {
	for _, s := range u {
		if ok, err := s.Exists(ctx, target); err == nil && ok {
			return s.Fetch(ctx, target)
		}
	}
	return nil, fmt.Errorf("blob %s: %w", target.Digest, errdef.ErrNotFound)
}
