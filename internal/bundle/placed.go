package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// Placed is an archive written in place, each image blob once: the image
// blobs (see [ImageBlobs]) come first in an archive, sorted by digest, so
// once their descriptors are known (from the manifests, before any layer
// arrives) every one has a fixed offset. [Placed.Write] streams a blob's
// content straight into its place, hashing it on the way, from any number
// of goroutines; [Placed.Finish] appends the package's own blobs and
// index.json, syncs the file and renames it into place.
//
// The file being written is kept beside the output (".NAME.partial") when
// the write fails or is interrupted, and a journal of the blobs it holds
// in the caller's staging directory: a later Placed for the same output
// re-checks (hashes) those blobs and keeps the sound ones that are still
// at the same place, so that they are not fetched again.
type Placed struct {
	out     string
	file    *atomicfile.File
	journal string
	jf      *os.File

	at  map[digest.Digest]placement
	end int64 // where the package's own blobs start

	mu   sync.Mutex
	done map[digest.Digest]bool
}

// placement is where a blob's content lies in the archive.
type placement struct {
	desc ocispec.Descriptor
	off  int64
}

// PlacedOptions configure [CreatePlaced].
type PlacedOptions struct {
	// Journal is the file (in a staging directory the caller owns) that
	// records the blobs written, for a later run to resume from. Required.
	Journal string
	// Progress, if set, receives EventBlobStart and EventBlobDone for the
	// blobs an earlier run left and this one re-checks.
	Progress func(Event)
}

// journalHeader starts a journal; it names the partial file it describes.
const journalHeader = "skiff placed archive "

// CreatePlaced lays out the archive out for the given image blobs (sorted
// by digest, each once, as [ImageBlobs] returns them) and opens it for
// writing. Blobs an earlier run for the same out and journal left at the
// same place are re-checked and, if sound, count as written.
func CreatePlaced(ctx context.Context, out string, images []ocispec.Descriptor, o PlacedOptions) (*Placed, error) {
	if !slices.IsSortedFunc(images, byDigest) || len(slices.CompactFunc(slices.Clone(images), func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })) != len(images) {
		return nil, fmt.Errorf("writing %s: the image blobs are not sorted by digest, each once", out)
	}
	tmp := "." + filepath.Base(out) + ".partial"
	partial := filepath.Join(filepath.Dir(out), tmp)
	earlier, err := readJournal(o.Journal, partial)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if earlier == nil {
		// No run of ours left the partial file: do not take over a file
		// someone else made.
		if _, err := os.Lstat(partial); err == nil {
			return nil, fmt.Errorf("writing %s: %s exists, but no interrupted build of %s left it: remove it and build again", out, partial, out)
		}
	}
	f, err := atomicfile.Resume(out, tmp, 0o644)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	p := &Placed{out: out, file: f, journal: o.Journal, at: make(map[digest.Digest]placement, len(images)), done: make(map[digest.Digest]bool)}
	if err := p.layout(images); err != nil {
		f.Keep()
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := p.recheck(ctx, earlier, o.Progress); err != nil {
		f.Keep()
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	return p, nil
}

// layout writes oci-layout and the image blobs' headers and padding, and
// records where each blob's content goes.
func (p *Placed) layout(images []ocispec.Descriptor) error {
	var off int64
	var zero [tarBlock]byte
	put := func(b []byte) error {
		_, err := p.file.WriteAt(b, off)
		off += int64(len(b))
		return err
	}
	member := func(name string, size int64, data []byte) error {
		var hdr bytes.Buffer
		if err := tar.NewWriter(&hdr).WriteHeader(header(name, size)); err != nil {
			return err
		}
		if err := put(hdr.Bytes()); err != nil {
			return err
		}
		if data != nil {
			if err := put(data); err != nil {
				return err
			}
		} else {
			off += size // written later
		}
		return put(zero[:padding(size)])
	}
	if err := member(memberLayout, int64(len(layoutJSON)), []byte(layoutJSON)); err != nil {
		return err
	}
	for _, d := range images {
		if err := checkDescriptor(d); err != nil {
			return err
		}
		if err := member(blobName(d.Digest), d.Size, nil); err != nil {
			return err
		}
		p.at[d.Digest] = placement{desc: d, off: off - padding(d.Size) - d.Size}
	}
	p.end = off
	return nil
}

func padding(size int64) int64 {
	if r := size % tarBlock; r != 0 {
		return tarBlock - r
	}
	return 0
}

// readJournal returns the blobs an earlier run wrote into partial (data
// offset by digest), or nil when there is no journal for it.
func readJournal(path, partial string) (map[digest.Digest]placement, error) {
	if path == "" {
		return nil, errors.New("no journal file given")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	if lines[0] != journalHeader+partial {
		return nil, nil
	}
	out := make(map[digest.Digest]placement)
	for _, l := range lines[1:] {
		// "DIGEST SIZE OFFSET"; a torn last line is ignored.
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		d, err := digest.Parse(f[0])
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err != nil || err1 != nil || err2 != nil {
			continue
		}
		out[d] = placement{desc: ocispec.Descriptor{Digest: d, Size: size}, off: off}
	}
	return out, nil
}

// recheck hashes the blobs an earlier run left where this layout puts
// them, keeps the sound ones, and starts a new journal listing them.
func (p *Placed) recheck(ctx context.Context, earlier map[digest.Digest]placement, progress func(Event)) error {
	var kept []placement
	buf := make([]byte, 1<<20)
	for d, e := range earlier {
		at, ok := p.at[d]
		if !ok || at.off != e.off || at.desc.Size != e.desc.Size {
			continue
		}
		emit(progress, Event{Kind: EventBlobStart, Descriptor: at.desc})
		h := sha256.New()
		n, err := io.CopyBuffer(h, io.NewSectionReader(p.file, at.off, at.desc.Size), buf)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err != nil || n != at.desc.Size || digest.NewDigest(digest.SHA256, h) != d {
			continue // damaged: fetched again
		}
		p.done[d] = true
		kept = append(kept, at)
		emit(progress, Event{Kind: EventBlobDone, Descriptor: at.desc})
	}
	jf, err := os.OpenFile(p.journal, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("starting the journal: %w", err)
	}
	p.jf = jf
	var b strings.Builder
	b.WriteString(journalHeader + p.file.Name() + "\n")
	for _, k := range kept {
		fmt.Fprintf(&b, "%s %d %d\n", k.desc.Digest, k.desc.Size, k.off)
	}
	if _, err := jf.WriteString(b.String()); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// Exists reports whether d's content is in place (see [Placed.Done]).
func (p *Placed) Exists(_ context.Context, d ocispec.Descriptor) (bool, error) {
	return p.Has(d.Digest) && p.Done(d.Digest), nil
}

// Has reports whether d is one of the archive's image blobs.
func (p *Placed) Has(d digest.Digest) bool {
	_, ok := p.at[d]
	return ok
}

// Done reports whether d's content is in place: written by this run, or
// left by an earlier one and re-checked.
func (p *Placed) Done(d digest.Digest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done[d]
}

// Write streams d's content from r into its place, hashing it: r must hold
// exactly d.Size bytes with d's digest. Blobs may be written concurrently.
func (p *Placed) Write(ctx context.Context, d ocispec.Descriptor, r io.Reader) error {
	at, ok := p.at[d.Digest]
	if !ok || at.desc.Size != d.Size {
		return fmt.Errorf("writing %s: blob %s (%d bytes) is not one of the archive's image blobs", p.out, d.Digest, d.Size)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	r = io.LimitReader(ctxReader{ctx, r}, d.Size)
	var n, flushed int64
	for n < d.Size {
		m, err := io.ReadFull(r, buf[:min(int64(len(buf)), d.Size-n)])
		if m > 0 {
			h.Write(buf[:m])
			if _, werr := p.file.WriteAt(buf[:m], at.off+n); werr != nil {
				return fmt.Errorf("writing %s: %w", p.out, werr)
			}
			n += int64(m)
			if n-flushed >= progressEvery || n == d.Size {
				// The disk starts on it now: the final fsync finds it written.
				startWriteback(p.file.File, at.off+flushed, n-flushed)
				flushed = n
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", d.Digest, err)
		}
	}
	if n < d.Size {
		return fmt.Errorf("%w: blob %s has %d bytes, its descriptor says %d", ErrSizeMismatch, d.Digest, n, d.Size)
	}
	if err := checkDigest(h, d.Digest); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[d.Digest] = true
	if _, err := fmt.Fprintf(p.jf, "%s %d %d\n", d.Digest, d.Size, at.off); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// Fetch reads a blob that is in place; errdef.ErrNotFound otherwise.
func (p *Placed) Fetch(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	at, ok := p.at[d.Digest]
	if !ok || !p.Done(d.Digest) {
		return nil, fmt.Errorf("%s: %w", d.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(io.NewSectionReader(p.file, at.off, at.desc.Size)), nil
}

// Finish completes the archive of the package whose root index is root:
// the image blobs of its graph must be exactly the ones laid out, all in
// place; the package's own blobs (read from src and verified) and
// index.json follow. The file is synced and renamed to out, and the
// journal removed. opts.Trusted is not used; opts.Digest is not supported.
// On error the partial file and the journal are kept.
func (p *Placed) Finish(ctx context.Context, src content.ReadOnlyStorage, root ocispec.Descriptor, opts WriteOptions) (*WriteResult, error) {
	res, err := p.finish(ctx, src, root, opts)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", p.out, err)
	}
	return res, nil
}

func (p *Placed) finish(ctx context.Context, src content.ReadOnlyStorage, root ocispec.Descriptor, opts WriteOptions) (*WriteResult, error) {
	if opts.Digest {
		return nil, errors.New("a placed archive does not compute its digest")
	}
	sigs, err := checkRoots(root, opts.Signatures)
	if err != nil {
		return nil, err
	}
	both := union{p, src}
	blobs, omitted, err := plan(ctx, both, root, sigs, opts.Omit)
	if err != nil {
		return nil, err
	}
	// The image blobs come first in plan's order: they must be the ones
	// laid out.
	if len(blobs) < len(p.at) {
		return nil, fmt.Errorf("the package has %d blobs, fewer than the %d image blobs laid out", len(blobs), len(p.at))
	}
	for _, b := range blobs[:len(p.at)] {
		at, ok := p.at[b.Digest]
		if !ok || at.desc.Size != b.Size {
			return nil, fmt.Errorf("blob %s of the package was not laid out among its image blobs", b.Digest)
		}
		if !p.Done(b.Digest) {
			return nil, fmt.Errorf("%w: image blob %s was never written", ErrMissingBlob, b.Digest)
		}
	}
	own := blobs[len(p.at):]
	for _, b := range own {
		if p.Has(b.Digest) {
			return nil, fmt.Errorf("blob %s was laid out among the image blobs but belongs to the package's own", b.Digest)
		}
	}
	for _, d := range omitted {
		emit(opts.Progress, Event{Kind: EventBlobOmitted, Descriptor: d})
	}
	index, err := indexJSON(root, sigs)
	if err != nil {
		return nil, err
	}
	if _, err := p.file.Seek(p.end, io.SeekStart); err != nil {
		return nil, err
	}
	a := newArchiveWriter(p.file.File, false)
	a.n = p.end
	if err := writeBlobs(ctx, a, own, fetcher(src), nil, opts.Progress); err != nil {
		return nil, err
	}
	if err := a.member(memberIndex, index); err != nil {
		return nil, err
	}
	if err := a.close(); err != nil {
		return nil, err
	}
	// An earlier run's partial file may be longer.
	if err := p.file.Truncate(a.n); err != nil {
		return nil, err
	}
	if opts.Copied != nil {
		opts.Copied()
	}
	if err := p.file.Commit(); err != nil {
		return nil, err
	}
	p.jf.Close()
	os.Remove(p.journal)
	return &WriteResult{Blobs: len(blobs), Omitted: len(omitted), Bytes: a.n}, nil
}

// Close leaves the partial file and its journal for a later run; it does
// nothing after a successful Finish.
func (p *Placed) Close() error {
	p.file.Keep()
	if p.jf != nil {
		return p.jf.Close()
	}
	return nil
}

// checkRoots checks the signatures index.json lists beside root and
// returns them sorted by digest, each once.
func checkRoots(root ocispec.Descriptor, signatures []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if root.MediaType != ocispec.MediaTypeImageIndex || root.ArtifactType != ArtifactTypePackage {
		return nil, fmt.Errorf("root %s is not a package root index (media type %q, artifact type %q)", root.Digest, root.MediaType, root.ArtifactType)
	}
	sigs := slices.Clone(signatures)
	slices.SortFunc(sigs, byDigest)
	sigs = slices.CompactFunc(sigs, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })
	for _, s := range sigs {
		if s.ArtifactType != ArtifactTypeSignature {
			return nil, fmt.Errorf("signature %s has artifact type %q, want %q", s.Digest, s.ArtifactType, ArtifactTypeSignature)
		}
	}
	return sigs, nil
}

// Each calls fn for every image blob, in archive order, until fn fails.
func (p *Placed) Each(fn func(ocispec.Descriptor) error) error {
	blobs := make([]ocispec.Descriptor, 0, len(p.at))
	for _, at := range p.at {
		blobs = append(blobs, at.desc)
	}
	slices.SortFunc(blobs, byDigest)
	for _, d := range blobs {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}
