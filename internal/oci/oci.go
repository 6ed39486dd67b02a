// Package oci moves images and artifacts between OCI registries and local
// content stores: Pull copies images (optionally filtered to platforms)
// into a store, Push copies a store's graphs into registries with blob
// de-duplication, cross-repository mounts and retries, and Catalog and
// Inventory list what a registry already holds.
package oci

import (
	"errors"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Errors callers can branch on with errors.Is. Every returned error also
// names the image and the likely fix in its message.
var (
	// ErrNotFound: the image, tag or blob does not exist.
	ErrNotFound = errors.New("image not found")
	// ErrUnauthorized: the registry refused the credentials (or none).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnreachable: no connection to the registry could be made.
	ErrUnreachable = errors.New("cannot reach registry")
	// ErrTLS: the TLS handshake failed (unknown CA, wrong name, or a
	// plain-HTTP registry addressed over HTTPS).
	ErrTLS = errors.New("tls handshake failed")
	// ErrNoPlatform: none of the requested platforms is in the image.
	ErrNoPlatform = errors.New("no matching platform")
	// ErrDigestChanged: the registry stored a manifest under a different
	// digest than the one pushed.
	ErrDigestChanged = errors.New("manifest digest changed")
)

// EventKind says what happened to a blob or an image.
type EventKind int

// Event kinds, in the order they usually happen.
const (
	// BlobStart: a transfer of the blob begins.
	BlobStart EventKind = iota + 1
	// BlobDone: the blob was transferred.
	BlobDone
	// BlobSkipped: the destination already had the blob.
	BlobSkipped
	// BlobMounted: the blob was mounted from another repository of the
	// same registry instead of uploaded.
	BlobMounted
	// ImageDone: the image (its whole graph) is at the destination.
	ImageDone
)

func (k EventKind) String() string {
	switch k {
	case BlobStart:
		return "BlobStart"
	case BlobDone:
		return "BlobDone"
	case BlobSkipped:
		return "BlobSkipped"
	case BlobMounted:
		return "BlobMounted"
	case ImageDone:
		return "ImageDone"
	}
	return "EventKind(?)"
}

// Event reports progress. Manifests are reported like blobs, with their
// MediaType telling them apart.
type Event struct {
	Kind EventKind
	// Image is the source reference (Pull) or the target (Push).
	Image     string
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// progress serialises calls to a caller's callback, so the callback needs
// no locking of its own.
type progress struct {
	mu sync.Mutex
	fn func(Event)
}

func newProgress(fn func(Event)) *progress { return &progress{fn: fn} }

func (p *progress) emit(e Event) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(e)
}
