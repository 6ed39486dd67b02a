package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxDescriptors bounds the descriptors Verify keeps from the manifests it
// reads, so a hostile archive cannot make it allocate without limit.
const maxDescriptors = 1 << 20

// VerifyOptions configures [Verify] and [VerifyReader].
type VerifyOptions struct {
	// Allow, if set, reports whether a blob a delta archive omits may be
	// absent (the base holds it). Only blobs the package description lists
	// as omitted are asked about; a non-delta archive omits nothing. If
	// nil, every omission is an error: pass a func returning true to check
	// a delta archive without its base.
	Allow func(digest.Digest) bool
	// Progress, if set, receives events; it is called synchronously.
	Progress func(Event)
}

// VerifyResult describes a verified archive. It is returned with the error
// when the graph is incomplete, so callers can list what is wrong.
type VerifyResult struct {
	// Root is the package root.
	Root ocispec.Descriptor
	// Blobs is the number of blobs in the archive; Bytes the archive size.
	Blobs int
	Bytes int64
	// Omitted are blobs of a delta archive absent and allowed.
	Omitted []digest.Digest
	// Missing are blobs the graph refers to that are absent and not
	// allowed (ErrMissingBlob).
	Missing []digest.Digest
	// Extraneous are blobs the graph does not refer to (ErrExtraneousBlob).
	Extraneous []digest.Digest
}

// Verify checks the archive at path in one sequential pass; see
// [VerifyReader].
func Verify(ctx context.Context, path string, opts VerifyOptions) (*VerifyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var total int64
	if fi, err := f.Stat(); err == nil {
		total = fi.Size()
	}
	res, err := verify(ctx, f, total, opts)
	if err != nil {
		return res, fmt.Errorf("verifying %s: %w", path, err)
	}
	return res, nil
}

// VerifyReader checks an archive read from r in one sequential pass: every
// member's name and type (ErrUnsafePath), the member order, every blob's
// sha256 and size (ErrDigestMismatch, ErrSizeMismatch), that the archive is
// complete (ErrTruncated), that every blob the graph from index.json refers
// to is present (ErrMissingBlob) unless it is an allowed delta omission,
// and that no other blob is (ErrExtraneousBlob). Memory does not grow with
// blob sizes.
func VerifyReader(ctx context.Context, r io.Reader, opts VerifyOptions) (*VerifyResult, error) {
	return verify(ctx, r, 0, opts)
}

// copyBufSize is the buffer blobs are copied through while verified.
const copyBufSize = 1 << 20

// copyBufs are reused copy buffers: a verify of a small archive (a
// hub's upload, a fuzz input) need not allocate and clear 1 MiB.
var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// verifier holds what one pass learns.
type verifier struct {
	opts  VerifyOptions
	total int64
	cr    *countReader
	last  int64 // archive position of the last EventBytes

	index ocispec.Index
	root  ocispec.Descriptor
	sizes map[digest.Digest]int64
	nodes map[digest.Digest]*node
	delta map[digest.Digest]*Delta
	kept  int // descriptors kept in nodes
}

func verify(ctx context.Context, r io.Reader, total int64, opts VerifyOptions) (*VerifyResult, error) {
	cr := &countReader{r: ctxReader{ctx, r}}
	t := &tarReader{tr: tar.NewReader(cr), cr: cr}
	v := &verifier{
		opts: opts, total: total, cr: cr,
		sizes: make(map[digest.Digest]int64),
		nodes: make(map[digest.Digest]*node),
		delta: make(map[digest.Digest]*Delta),
	}
	buf := copyBufs.Get().(*[copyBufSize]byte)
	defer copyBufs.Put(buf)
	var capture bytes.Buffer
	for {
		hdr, kind, d, err := t.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, err
		}
		switch kind {
		case kindLayout:
			err = readLayout(t.tr, hdr)
		case kindIndex:
			if v.index, err = readIndex(t.tr, hdr); err == nil {
				v.root, err = findRoot(v.index)
			}
		case kindBlob:
			err = v.blob(t.tr, hdr, d, buf[:], &capture)
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, err
		}
	}
	res := &VerifyResult{Root: v.root, Blobs: len(v.sizes), Bytes: cr.pos}
	return res, v.graph(res)
}

// blob checks one blob member and keeps what the graph check needs.
func (v *verifier) blob(r io.Reader, hdr *tar.Header, d digest.Digest, buf []byte, capture *bytes.Buffer) error {
	desc := ocispec.Descriptor{Digest: d, Size: hdr.Size}
	emit(v.opts.Progress, Event{Kind: EventBlobStart, Descriptor: desc, Done: v.cr.pos, Total: v.total})
	h := sha256.New()
	w := io.MultiWriter(h, eventWriter{v, desc})
	capture.Reset()
	small := hdr.Size <= maxJSON
	if small {
		w = io.MultiWriter(w, capture)
	}
	if _, err := io.CopyBuffer(w, r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return truncatedAt(hdr.Name)
		}
		return fmt.Errorf("reading %s: %w", hdr.Name, err)
	}
	if err := checkDigest(h, d); err != nil {
		return err
	}
	v.sizes[d] = hdr.Size
	if small {
		v.keep(d, capture.Bytes())
	}
	emit(v.opts.Progress, Event{Kind: EventBlobDone, Descriptor: desc, Done: v.cr.pos, Total: v.total})
	return nil
}

// keep parses a small blob that may be a manifest, an index or the package
// description, and keeps its edges and delta list.
func (v *verifier) keep(d digest.Digest, b []byte) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' || v.kept > maxDescriptors {
		return
	}
	var n node
	if json.Unmarshal(b, &n) == nil {
		v.nodes[d] = &n
		v.kept += len(n.Layers) + len(n.Manifests) + len(n.Blobs) + 2
	}
	if bytes.Contains(b, []byte(`"delta"`)) {
		var desc struct {
			Delta *Delta `json:"delta"`
		}
		if json.Unmarshal(b, &desc) == nil && desc.Delta != nil {
			v.delta[d] = desc.Delta
			v.kept += len(desc.Delta.Omitted)
		}
	}
}

// omissions returns the blobs the package description lists as omitted, or
// nil for a non-delta archive.
func (v *verifier) omissions() (map[digest.Digest]bool, *Delta) {
	root := v.nodes[v.root.Digest]
	if root == nil {
		return nil, nil
	}
	var meta *node
	for _, m := range root.Manifests {
		if m.ArtifactType == ArtifactTypeMetadata {
			meta = v.nodes[m.Digest]
		}
	}
	if meta == nil || meta.Config == nil {
		return nil, nil
	}
	delta := v.delta[meta.Config.Digest]
	if delta == nil {
		return nil, nil
	}
	set := make(map[digest.Digest]bool, len(delta.Omitted))
	for _, d := range delta.Omitted {
		set[d] = true
	}
	return set, delta
}

// graph walks the graph from index.json and checks it is complete and
// holds every blob.
func (v *verifier) graph(res *VerifyResult) error {
	if v.kept > maxDescriptors {
		return fmt.Errorf("%w: the manifests hold more than %d descriptors", ErrNotPackage, maxDescriptors)
	}
	if _, ok := v.sizes[v.root.Digest]; !ok {
		return fmt.Errorf("%w: the package root %s is missing from the archive", ErrNotPackage, v.root.Digest)
	}
	omitted, delta := v.omissions()
	type item struct {
		desc     ocispec.Descriptor
		referrer string
	}
	queue := make([]item, 0, len(v.index.Manifests))
	for _, m := range v.index.Manifests {
		queue = append(queue, item{m, memberIndex})
	}
	visited := make(map[digest.Digest]bool)
	var missingErr error
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		d := it.desc
		if err := checkDescriptor(d); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotPackage, it.referrer, err)
		}
		size, present := v.sizes[d.Digest]
		if present && size != d.Size {
			return fmt.Errorf("%w: blob %s is %d bytes, but %s says %d: the archive was not written by skiff or is damaged; rebuild it", ErrSizeMismatch, d.Digest, size, it.referrer, d.Size)
		}
		if visited[d.Digest] {
			continue
		}
		visited[d.Digest] = true
		if !present {
			if omitted[d.Digest] && v.opts.Allow != nil && v.opts.Allow(d.Digest) {
				res.Omitted = append(res.Omitted, d.Digest)
				emit(v.opts.Progress, Event{Kind: EventBlobOmitted, Descriptor: d, Done: v.cr.pos, Total: v.total})
				continue
			}
			res.Missing = append(res.Missing, d.Digest)
			if missingErr == nil {
				missingErr = missing(d, it.referrer, omitted[d.Digest], delta, v.opts.Allow != nil)
			}
			continue
		}
		if !hasChildren(d.MediaType) {
			continue
		}
		n := v.nodes[d.Digest]
		if n == nil {
			return fmt.Errorf("%w: blob %s, which %s refers to as %s, is not valid JSON", ErrNotPackage, d.Digest, it.referrer, d.MediaType)
		}
		for _, c := range n.children(d.MediaType) {
			queue = append(queue, item{c, "manifest " + string(d.Digest)})
		}
	}
	for d := range v.sizes {
		if !visited[d] {
			res.Extraneous = append(res.Extraneous, d)
		}
	}
	slices.Sort(res.Omitted)
	slices.Sort(res.Missing)
	slices.Sort(res.Extraneous)
	if missingErr != nil {
		if n := len(res.Missing) - 1; n > 0 {
			return fmt.Errorf("%w (and %d more missing)", missingErr, n)
		}
		return missingErr
	}
	if len(res.Extraneous) > 0 {
		return fmt.Errorf("%w: blob %s (and %d more) is in the archive but not in the package graph: the archive was not written by skiff; rebuild it", ErrExtraneousBlob, res.Extraneous[0], len(res.Extraneous)-1)
	}
	return nil
}

// missing is the error for an absent blob.
func missing(d ocispec.Descriptor, referrer string, listed bool, delta *Delta, haveAllow bool) error {
	switch {
	case listed && haveAllow:
		return fmt.Errorf("%w: blob %s (referred to by %s) is omitted from this delta archive and the base %s does not hold it: load the base package first", ErrMissingBlob, d.Digest, referrer, delta.Base)
	case listed:
		return fmt.Errorf("%w: blob %s (referred to by %s) is omitted from this delta archive: verify it against its base %s", ErrMissingBlob, d.Digest, referrer, delta.Base)
	default:
		return fmt.Errorf("%w: blob %s (%s, referred to by %s) is not in the archive: the archive is incomplete; rebuild it", ErrMissingBlob, d.Digest, d.MediaType, referrer)
	}
}

// eventWriter reports EventBytes as blob content streams by.
type eventWriter struct {
	v    *verifier
	desc ocispec.Descriptor
}

func (e eventWriter) Write(p []byte) (int, error) {
	v := e.v
	if v.opts.Progress != nil && v.cr.pos-v.last >= progressEvery {
		v.last = v.cr.pos
		v.opts.Progress(Event{Kind: EventBytes, Descriptor: e.desc, Done: v.cr.pos, Total: v.total})
	}
	return len(p), nil
}
