package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// flight tracks transfers in progress so that concurrent copies of the
// same blob wait for the first one instead of transferring it again.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done chan struct{}
	err  error
}

func newFlight() *flight { return &flight{calls: map[string]*call{}} }

// begin claims key. The leader (lead == true) must call end; others get
// the leader's call to wait on.
func (f *flight) begin(key string) (c *call, lead bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	c = &call{done: make(chan struct{})}
	f.calls[key] = c
	return c, true
}

// end releases key with the outcome of the leader's transfer.
func (f *flight) end(key string, c *call, err error) {
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	c.err = err
	close(c.done)
}

// wait blocks until the leader is done and returns its error.
func (c *call) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lazySource defers opening blobs until they are read. oras.CopyGraph
// fetches a node before handing it to the destination's Push; with a lazy
// source a destination that skips or mounts the blob never transfers it.
// Content already in memory (known) is served without a request.
type lazySource struct {
	content.ReadOnlyStorage
	known map[digest.Digest][]byte
}

func (s lazySource) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if b, ok := s.known[desc.Digest]; ok && int64(len(b)) == desc.Size {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return &lazyReader{open: func() (io.ReadCloser, error) { return s.ReadOnlyStorage.Fetch(ctx, desc) }}, nil
}

type lazyReader struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	err  error
}

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.rc == nil && r.err == nil {
		r.rc, r.err = r.open()
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.rc.Read(p)
}

func (r *lazyReader) Close() error {
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// sourceStorage marks errors from a local source, so they are not blamed
// on the registry.
type sourceStorage struct {
	content.ReadOnlyStorage
}

func (s sourceStorage) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := s.ReadOnlyStorage.Fetch(ctx, desc)
	if err != nil {
		return nil, &sourceError{desc: desc, err: err}
	}
	return rc, nil
}

type sourceError struct {
	desc ocispec.Descriptor
	err  error
}

func (e *sourceError) Error() string {
	return fmt.Sprintf("reading %s from the source: %v", e.desc.Digest, e.err)
}

func (e *sourceError) Unwrap() error { return e.err }
