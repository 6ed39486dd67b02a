package oci

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Deferred lets [Pull] leave blobs for later: a blob Defer chooses is not
// transferred, only recorded with where it comes from, so that the caller
// can lay out its destination first (knowing every blob's size) and then
// fetch each deferred blob straight into its place with [Deferred.Fetch].
// Manifests and indexes are never deferred: Pull needs them to walk the
// graph.
type Deferred struct {
	// Defer reports whether to leave a blob for later.
	Defer func(ocispec.Descriptor) bool

	mu    sync.Mutex
	blobs map[digest.Digest]deferredBlob
}

type deferredBlob struct {
	desc    ocispec.Descriptor
	src     content.Fetcher
	image   string
	what    string // "pulling REF"
	where   string // the registry (and mirror) it comes from
	retries int
	client  *client
	prog    *progress
}

// record keeps desc, pulled from src for image, unless it is kept already.
func (d *Deferred) record(b deferredBlob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blobs == nil {
		d.blobs = make(map[digest.Digest]deferredBlob)
	}
	if _, ok := d.blobs[b.desc.Digest]; !ok {
		d.blobs[b.desc.Digest] = b
	}
}

// Has reports whether Pull deferred the blob.
func (d *Deferred) Has(dg digest.Digest) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.blobs[dg]
	return ok
}

// Blobs lists the deferred blobs, sorted by digest.
func (d *Deferred) Blobs() []ocispec.Descriptor {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ocispec.Descriptor, 0, len(d.blobs))
	for _, b := range d.blobs {
		out = append(out, b.desc)
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return compareDigest(a.Digest, b.Digest) })
	return out
}

func compareDigest(a, b digest.Digest) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Fetch transfers a deferred blob: it opens it at its source and hands the
// body to write, again (from a fresh request) when write fails with an
// error worth a retry, as Pull retries. write must consume exactly the
// blob and verify it. Progress events (BlobStart, BlobDone) go to Pull's
// Progress.
func (d *Deferred) Fetch(ctx context.Context, dg digest.Digest, write func(io.Reader) error) error {
	d.mu.Lock()
	b, ok := d.blobs[dg]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("blob %s was not deferred by this pull", dg)
	}
	b.prog.emit(Event{Kind: BlobStart, Image: b.image, Digest: dg, MediaType: b.desc.MediaType, Size: b.desc.Size})
	err := withRetry(ctx, b.retries, func() error {
		rc, err := b.src.Fetch(ctx, b.desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := write(rc); err != nil {
			return err
		}
		// Read to the end (nothing is left of a blob of the right size), so
		// that the connection is reused.
		_, err = io.Copy(io.Discard, io.LimitReader(rc, 1<<10))
		return err
	})
	if err != nil {
		return b.client.annotate(explain(b.what, b.where, err))
	}
	b.prog.emit(Event{Kind: BlobDone, Image: b.image, Digest: dg, MediaType: b.desc.MediaType, Size: b.desc.Size})
	return nil
}
