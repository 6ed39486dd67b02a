package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// EventKind says what an [Event] reports.
type EventKind int

const (
	// EventBlobStart: a blob is about to be copied or checked.
	EventBlobStart EventKind = iota
	// EventBytes: more bytes were processed (at most every 4 MiB).
	EventBytes
	// EventBlobDone: a blob was copied or checked completely.
	EventBlobDone
	// EventBlobOmitted: a blob was left out of a delta archive (Write) or
	// found missing but allowed (Verify).
	EventBlobOmitted
)

// Event reports progress of [Write], [Verify] and [VerifyReader].
type Event struct {
	Kind EventKind
	// Descriptor is the blob concerned (digest and size at least).
	Descriptor ocispec.Descriptor
	// Done and Total count bytes: blob content for Write; archive bytes
	// for Verify. Total is 0 when unknown (VerifyReader).
	Done, Total int64
}

// progressEvery is how often EventBytes is reported within a blob.
const progressEvery = 4 << 20

// WriteOptions configures [Write].
type WriteOptions struct {
	// Signatures are signature manifests (in src) listed in index.json
	// beside the root; nil means none.
	Signatures []ocispec.Descriptor
	// Omit, if set, reports blobs to leave out of a delta archive. An
	// omitted manifest or index leaves out its whole subgraph (the base
	// holds it). The root and signatures are never omitted. The caller
	// lists the omitted digests in Description.Delta.
	Omit func(digest.Digest) bool
	// Progress, if set, receives events; it is called synchronously.
	Progress func(Event)
	// Trusted, if set, reports blobs whose content the caller verified
	// in this process (hashed as they arrived in src). Write copies those
	// without hashing them again, checking only their size; it verifies
	// every other blob while copying. Blobs src held before, from an
	// earlier run, must not be reported.
	Trusted func(digest.Digest) bool
	// Digest asks for the sha256 of the whole archive in
	// WriteResult.Digest; it costs one more hash of every byte.
	Digest bool
	// Copied, if set, is called once every blob is in the archive, before
	// the archive is synced and renamed into place: the caller may start
	// releasing src then (the write can still fail).
	Copied func()
}

// WriteResult describes a written archive.
type WriteResult struct {
	// Blobs is the number of blobs written; Omitted the number left out.
	Blobs   int `json:"blobs"`
	Omitted int `json:"omitted,omitempty"`
	// Bytes is the size of the archive.
	Bytes int64 `json:"bytes"`
	// Digest is the sha256 of the whole archive file, when
	// WriteOptions.Digest asked for it.
	Digest digest.Digest `json:"digest,omitempty"`
}

// Write writes the package whose root index is root, read from src, as an
// archive at out. It walks the graph from root and opts.Signatures, writes
// oci-layout, every blob once (the image blobs sorted by digest, then the
// package's own blobs sorted by digest) and index.json, and verifies
// each blob's digest and size while copying (see WriteOptions.Trusted). It writes a temporary file
// beside out and renames it into place: on error, out is untouched and no
// temporary file is left.
func Write(ctx context.Context, src content.ReadOnlyStorage, root ocispec.Descriptor, out string, opts WriteOptions) (*WriteResult, error) {
	if root.MediaType != ocispec.MediaTypeImageIndex || root.ArtifactType != ArtifactTypePackage {
		return nil, fmt.Errorf("writing %s: root %s is not a package root index (media type %q, artifact type %q)", out, root.Digest, root.MediaType, root.ArtifactType)
	}
	sigs := slices.Clone(opts.Signatures)
	slices.SortFunc(sigs, func(a, b ocispec.Descriptor) int { return cmp.Compare(a.Digest, b.Digest) })
	sigs = slices.CompactFunc(sigs, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })
	for _, s := range sigs {
		if s.ArtifactType != ArtifactTypeSignature {
			return nil, fmt.Errorf("writing %s: signature %s has artifact type %q, want %q", out, s.Digest, s.ArtifactType, ArtifactTypeSignature)
		}
	}

	blobs, omitted, err := plan(ctx, src, root, sigs, opts.Omit)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	for _, d := range omitted {
		emit(opts.Progress, Event{Kind: EventBlobOmitted, Descriptor: d})
	}
	index, err := indexJSON(root, sigs)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}

	res := &WriteResult{Blobs: len(blobs), Omitted: len(omitted)}
	err = writeAtomic(out, opts.Digest, func(a *archiveWriter) error {
		if err := a.member(memberLayout, []byte(layoutJSON)); err != nil {
			return err
		}
		if err := writeBlobs(ctx, a, blobs, fetcher(src), opts.Trusted, opts.Progress); err != nil {
			return err
		}
		if err := a.member(memberIndex, index); err != nil {
			return err
		}
		if err := a.close(); err != nil {
			return err
		}
		if opts.Copied != nil {
			opts.Copied()
		}
		return nil
	}, res)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	return res, nil
}

// plan returns the blobs to write in archive order and the omitted ones:
// the image blobs (see [ImageBlobs]) sorted by digest, then the package's
// own blobs (the root index, the metadata manifest and its config and
// layers, the signatures) sorted by digest.
func plan(ctx context.Context, src content.Fetcher, root ocispec.Descriptor, sigs []ocispec.Descriptor, omit func(digest.Digest) bool) (blobs, omitted []ocispec.Descriptor, err error) {
	if err := checkDescriptor(root); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", memberIndex, err)
	}
	children, err := successors(ctx, src, root)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w: the package root %s is not in the store: %w", ErrMissingBlob, root.Digest, err)
		}
		return nil, nil, err
	}
	entries := make([]ocispec.Descriptor, 0, len(children))
	for _, c := range children {
		if c.ArtifactType != ArtifactTypeMetadata {
			entries = append(entries, c)
		}
	}
	w := &walker{src: src, omit: omit, seen: make(map[digest.Digest]ocispec.Descriptor)}
	images, err := w.walk(ctx, entries, string(root.Digest))
	if err != nil {
		return nil, nil, err
	}
	own, err := w.walk(ctx, append([]ocispec.Descriptor{root}, sigs...), memberIndex)
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(w.omitted, byDigest)
	return append(images, own...), w.omitted, nil
}

// ImageBlobs returns, sorted by digest, the blobs of the graphs of images
// (the root index's entries other than the metadata manifest: images,
// their carried signatures, bundled dependencies), without the subgraphs
// omit leaves out (see [WriteOptions.Omit]). They come first in the
// archive, in this order, so a writer that knows them (and their sizes)
// can lay them out before it has their content or the package's own
// blobs; [Placed] does.
func ImageBlobs(ctx context.Context, src content.Fetcher, images []ocispec.Descriptor, omit func(digest.Digest) bool) ([]ocispec.Descriptor, error) {
	w := &walker{src: src, omit: omit, seen: make(map[digest.Digest]ocispec.Descriptor)}
	return w.walk(ctx, images, "the package root")
}

// walker walks graphs breadth first, each blob once across walks.
type walker struct {
	src     content.Fetcher
	omit    func(digest.Digest) bool
	seen    map[digest.Digest]ocispec.Descriptor
	omitted []ocispec.Descriptor
}

// walk returns the blobs reachable from roots not seen by an earlier walk,
// sorted by digest. A root is omitted only if referrer is not index.json.
func (w *walker) walk(ctx context.Context, roots []ocispec.Descriptor, referrer string) ([]ocispec.Descriptor, error) {
	type item struct {
		desc     ocispec.Descriptor
		referrer string
	}
	var blobs []ocispec.Descriptor
	queue := make([]item, 0, len(roots))
	for _, r := range roots {
		queue = append(queue, item{r, referrer})
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		it := queue[0]
		queue = queue[1:]
		d := it.desc
		if err := checkDescriptor(d); err != nil {
			return nil, fmt.Errorf("%s: %w", it.referrer, err)
		}
		if prev, ok := w.seen[d.Digest]; ok {
			if prev.Size != d.Size {
				return nil, fmt.Errorf("%w: %s refers to %s with size %d, elsewhere %d", ErrSizeMismatch, it.referrer, d.Digest, d.Size, prev.Size)
			}
			continue
		}
		w.seen[d.Digest] = d
		if it.referrer != memberIndex && w.omit != nil && w.omit(d.Digest) {
			w.omitted = append(w.omitted, d)
			continue
		}
		blobs = append(blobs, d)
		children, err := successors(ctx, w.src, d)
		if err != nil {
			if errors.Is(err, errdef.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s (%s, referred to by %s) is not in the store: %w", ErrMissingBlob, d.Digest, d.MediaType, it.referrer, err)
			}
			return nil, err
		}
		for _, c := range children {
			queue = append(queue, item{c, string(d.Digest)})
		}
	}
	slices.SortFunc(blobs, byDigest)
	return blobs, nil
}

func byDigest(a, b ocispec.Descriptor) int { return cmp.Compare(a.Digest, b.Digest) }

// tarBlock is the tar block size: member data is padded to it, and the
// archive ends with two zero blocks.
const tarBlock = 512

// archiveWriter writes the archive's tar stream member by member. Headers
// are the ones archive/tar writes (see header); data is copied straight to
// the file, through the kernel (copy_file_range) when the source is a file
// whose content is already verified, so output is byte for byte what a
// tar.Writer would produce.
type archiveWriter struct {
	f    *os.File
	w    *bufio.Writer // over hw: headers, padding and hashed copies
	hw   io.Writer     // f, or f and the whole-archive hash
	sum  hash.Hash     // nil unless the whole-archive digest is wanted
	n    int64         // bytes written so far
	hdr  bytes.Buffer
	buf  []byte
	zero [2 * tarBlock]byte
}

func newArchiveWriter(f *os.File, withDigest bool) *archiveWriter {
	a := &archiveWriter{f: f, hw: f, buf: make([]byte, 1<<20)}
	if withDigest {
		a.sum = sha256.New()
		a.hw = io.MultiWriter(f, a.sum)
	}
	a.w = bufio.NewWriterSize(a.hw, 1<<20)
	return a
}

func (a *archiveWriter) write(b []byte) error {
	n, err := a.w.Write(b)
	a.n += int64(n)
	return err
}

// header writes the tar header of a member of the given size.
func (a *archiveWriter) header(name string, size int64) error {
	a.hdr.Reset()
	tw := tar.NewWriter(&a.hdr)
	if err := tw.WriteHeader(header(name, size)); err != nil {
		return err
	}
	return a.write(a.hdr.Bytes())
}

// pad ends a member of the given size.
func (a *archiveWriter) pad(size int64) error {
	if r := size % tarBlock; r != 0 {
		return a.write(a.zero[:tarBlock-r])
	}
	return nil
}

// member writes a small member held in memory.
func (a *archiveWriter) member(name string, data []byte) error {
	if err := a.header(name, int64(len(data))); err != nil {
		return err
	}
	if err := a.write(data); err != nil {
		return err
	}
	return a.pad(int64(len(data)))
}

// close writes the end-of-archive marker and flushes.
func (a *archiveWriter) close() error {
	if err := a.write(a.zero[:]); err != nil {
		return err
	}
	return a.w.Flush()
}

// indexJSON is the content of the index.json member.
func indexJSON(root ocispec.Descriptor, sigs []ocispec.Descriptor) ([]byte, error) {
	b, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append([]ocispec.Descriptor{root}, sigs...),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding index.json: %w", err)
	}
	return b, nil
}

// fetcher fetches blobs from src, naming a missing one.
func fetcher(src content.Fetcher) func(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
	return func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		rc, err := src.Fetch(ctx, d)
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s (%s) is not in the store: %w", ErrMissingBlob, d.Digest, d.MediaType, err)
		}
		return rc, err
	}
}

// writeBlobs writes blob members in the given order, each fetched with
// fetch. A blob trusted reports
// (its content was verified by the caller, in this process) is copied
// without hashing it again, its size still checked; every other blob is
// verified while copied.
func writeBlobs(ctx context.Context, a *archiveWriter, blobs []ocispec.Descriptor, fetch func(context.Context, ocispec.Descriptor) (io.ReadCloser, error), trusted func(digest.Digest) bool, progress func(Event)) error {
	var total int64
	for _, b := range blobs {
		total += b.Size
	}
	p := &progressWriter{progress: progress, total: total}
	for _, b := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.desc = b
		emit(progress, Event{Kind: EventBlobStart, Descriptor: b, Done: p.done, Total: total})
		if err := a.header(blobName(b.Digest), b.Size); err != nil {
			return err
		}
		rc, err := fetch(ctx, b)
		if err != nil {
			return fmt.Errorf("fetching %s: %w", b.Digest, err)
		}
		if f, ok := rc.(*os.File); ok && a.sum == nil && trusted != nil && trusted(b.Digest) {
			err = a.copyFile(ctx, f, b, p)
		} else {
			err = a.copyVerified(ctx, rc, b, p)
		}
		rc.Close()
		if err != nil {
			return err
		}
		if err := a.pad(b.Size); err != nil {
			return err
		}
		emit(progress, Event{Kind: EventBlobDone, Descriptor: b, Done: p.done, Total: total})
	}
	return nil
}

// copyVerified copies exactly d.Size bytes of r and checks that r holds no
// more and that the content matches d.Digest.
func (a *archiveWriter) copyVerified(ctx context.Context, r io.Reader, d ocispec.Descriptor, p *progressWriter) error {
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(a.w, h, p), io.LimitReader(ctxReader{ctx, r}, d.Size), a.buf)
	a.n += n
	if err != nil {
		return fmt.Errorf("copying %s: %w", d.Digest, err)
	}
	if n < d.Size {
		return fmt.Errorf("%w: blob %s has %d bytes, its descriptor says %d", ErrSizeMismatch, d.Digest, n, d.Size)
	}
	if m, _ := io.ReadFull(r, a.buf[:1]); m > 0 {
		return fmt.Errorf("%w: blob %s is larger than the %d bytes its descriptor says", ErrSizeMismatch, d.Digest, d.Size)
	}
	return checkDigest(h, d.Digest)
}

// copyFile copies a verified blob file into the archive through the
// kernel, in progressEvery chunks so that progress and cancellation are
// still seen. Its size is checked, its content not hashed again.
func (a *archiveWriter) copyFile(ctx context.Context, f *os.File, d ocispec.Descriptor, p *progressWriter) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("copying %s: %w", d.Digest, err)
	}
	if st.Size() != d.Size {
		return fmt.Errorf("%w: blob %s has %d bytes, its descriptor says %d", ErrSizeMismatch, d.Digest, st.Size(), d.Size)
	}
	if err := a.w.Flush(); err != nil {
		return err
	}
	for left := d.Size; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := min(left, progressEvery)
		n, err := a.f.ReadFrom(io.LimitReader(f, chunk))
		startWriteback(a.f, a.n, n)
		a.n += n
		left -= n
		p.add(n)
		if err != nil {
			return fmt.Errorf("copying %s: %w", d.Digest, err)
		}
		if n < chunk {
			return fmt.Errorf("%w: blob %s has %d bytes, its descriptor says %d", ErrSizeMismatch, d.Digest, d.Size-left, d.Size)
		}
	}
	return nil
}

func checkDigest(h hash.Hash, want digest.Digest) error {
	if got := digest.NewDigest(digest.SHA256, h); got != want {
		return fmt.Errorf("blob %s is corrupt (%w; it hashes to %s): the archive was damaged in transit; copy it again", want, ErrDigestMismatch, got)
	}
	return nil
}

// progressWriter counts blob bytes and reports EventBytes.
type progressWriter struct {
	progress    func(Event)
	desc        ocispec.Descriptor
	done, total int64
	last        int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.add(int64(len(b)))
	return len(b), nil
}

func (p *progressWriter) add(n int64) {
	p.done += n
	if p.progress != nil && p.done-p.last >= progressEvery {
		p.last = p.done
		p.progress(Event{Kind: EventBytes, Descriptor: p.desc, Done: p.done, Total: p.total})
	}
}

func emit(progress func(Event), e Event) {
	if progress != nil {
		progress(e)
	}
}

// writeAtomic writes out through write: into a temporary file beside out,
// fsynced and renamed into place. On error the temporary file is removed.
// It fills res.Bytes, and res.Digest when withDigest is set.
func writeAtomic(out string, withDigest bool, write func(*archiveWriter) error, res *WriteResult) error {
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	a := newArchiveWriter(f.File, withDigest)
	if err := write(a); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	res.Bytes = a.n
	if a.sum != nil {
		res.Digest = digest.NewDigest(digest.SHA256, a.sum)
	}
	return nil
}
