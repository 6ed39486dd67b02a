package bundle

import (
	"archive/tar"
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
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/sign"
)

// Archive is an opened package archive. It serves its blobs as an oras
// content.ReadOnlyStorage, reading them in place from the file and
// verifying each on read. It is safe for concurrent use.
type Archive struct {
	f     archiveFile
	path  string
	blobs map[digest.Digest]section
	index ocispec.Index
	root  ocispec.Descriptor
	// rootIndex is the package root index; meta is its metadata manifest
	// (descriptor and content).
	rootIndex    ocispec.Index
	metaDesc     ocispec.Descriptor
	metaManifest ocispec.Manifest
	// sub marks a view of a bundled dependency (see [Archive.Sub]): it
	// shares the file and does not close it.
	sub bool
}

// archiveFile is what an Archive reads: an *os.File, or memory in tests.
type archiveFile interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
}

// section locates a blob's content in the file.
type section struct{ off, size int64 }

var _ content.ReadOnlyStorage = (*Archive)(nil)

// Signature is a signature stored in an archive.
type Signature struct {
	// Descriptor is the signature manifest, as index.json lists it.
	Descriptor ocispec.Descriptor
	// Envelope is the DSSE envelope (JSON).
	Envelope []byte
}

// Open opens the archive at path. It reads the tar headers by seeking, not
// the blob contents, checking every member (ErrUnsafePath, ErrTruncated);
// reads index.json, the root index and the metadata manifest
// (ErrNotPackage); and walks the package graph from index.json, reading
// (and verifying) every manifest and index, to check that every blob it
// refers to is present with its size (ErrMissingBlob, ErrSizeMismatch;
// a delta may omit what its description lists) and that no other blob is
// (ErrExtraneousBlob): the structural checks of [Verify]. The contents of
// the other blobs (layers, charts) are verified when fetched. It does not
// check signatures: readers use [OpenVerified].
func Open(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	a, err := open(f, path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return a, nil
}

func open(f archiveFile, path string) (*Archive, error) {
	cr := &seekCountReader{countReader: countReader{r: f}, s: f}
	t := &tarReader{tr: tar.NewReader(cr), cr: &cr.countReader}
	a := &Archive{f: f, path: path, blobs: make(map[digest.Digest]section)}
	var sawIndex bool
	for {
		hdr, kind, d, err := t.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch kind {
		case kindLayout:
			if err := readLayout(t.tr, hdr); err != nil {
				return nil, err
			}
		case kindIndex:
			if a.index, err = readIndex(t.tr, hdr); err != nil {
				return nil, err
			}
			sawIndex = true
		case kindBlob:
			a.blobs[d] = section{off: cr.pos, size: hdr.Size}
		}
	}
	if !sawIndex {
		return nil, fmt.Errorf("%w: the archive has no %s", ErrNotPackage, memberIndex)
	}
	root, err := findRoot(a.index)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := a.readRoot(ctx, root); err != nil {
		return nil, err
	}
	if err := a.checkGraph(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// OpenOptions configures [OpenVerified].
type OpenOptions struct {
	// Trust holds the keys one of which must have signed the package.
	// It is required unless SkipSignature is set.
	Trust *sign.Trust
	// SkipSignature waives signature verification: an unsigned or
	// untrusted package is accepted. It must be asked for explicitly
	// (--insecure-skip-signature, or a reader that only describes the
	// package, such as inspect).
	SkipSignature bool
}

// ErrNoTrust: signature verification was neither given keys nor waived.
var ErrNoTrust = errors.New("no trusted keys given")

// OpenVerified is how every reader opens an archive: [Open] (every
// structural check [Verify] makes, blob contents verified on read) and,
// unless o.SkipSignature, the signature against o.Trust. It returns what
// the signature check verified (nil when skipped).
func OpenVerified(ctx context.Context, path string, o OpenOptions) (*Archive, *sign.Verified, error) {
	if o.Trust == nil && !o.SkipSignature {
		return nil, nil, fmt.Errorf("opening %s: %w: pass a trust directory, or skip signature verification explicitly (--insecure-skip-signature)", path, ErrNoTrust)
	}
	a, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	if o.SkipSignature {
		return a, nil, nil
	}
	v, err := a.VerifySignature(ctx, o.Trust)
	if err != nil {
		a.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, v, nil
}

// checkGraph walks the graph from index.json: every blob it refers to is
// present with the size its descriptor gives (or omitted by a delta whose
// description lists it), and every blob present is in the graph.
func (a *Archive) checkGraph(ctx context.Context) error {
	omitted := map[digest.Digest]bool{}
	if a.metaManifest.Config.MediaType == MediaTypeConfig {
		d, err := a.Description(ctx)
		if err != nil {
			return err
		}
		if d.Delta != nil {
			for _, o := range d.Delta.Omitted {
				omitted[o] = true
			}
		}
	}
	type item struct {
		desc     ocispec.Descriptor
		referrer string
	}
	queue := make([]item, 0, len(a.index.Manifests))
	for _, m := range a.index.Manifests {
		queue = append(queue, item{m, memberIndex})
	}
	visited := make(map[digest.Digest]bool, len(a.blobs))
	kept := len(queue)
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		d := it.desc
		if err := checkDescriptor(d); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotPackage, it.referrer, err)
		}
		s, present := a.blobs[d.Digest]
		if present && s.size != d.Size {
			return fmt.Errorf("%w: blob %s is %d bytes, but %s says %d: the archive was not written by skiff or is damaged; rebuild it", ErrSizeMismatch, d.Digest, s.size, it.referrer, d.Size)
		}
		if visited[d.Digest] {
			continue
		}
		visited[d.Digest] = true
		if !present {
			if omitted[d.Digest] {
				continue
			}
			return missing(d, it.referrer, false, nil, false)
		}
		children, err := successors(ctx, a, d)
		if err != nil {
			return fmt.Errorf("%w: blob %s, which %s refers to: %w", ErrNotPackage, d.Digest, it.referrer, err)
		}
		if kept += len(children); kept > maxDescriptors {
			return fmt.Errorf("%w: the manifests hold more than %d descriptors", ErrNotPackage, maxDescriptors)
		}
		for _, c := range children {
			queue = append(queue, item{c, "manifest " + string(d.Digest)})
		}
	}
	var extra []digest.Digest
	for d := range a.blobs {
		if !visited[d] {
			extra = append(extra, d)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("%w: blob %s (and %d more) is in the archive but not in the package graph: the archive was not written by skiff; rebuild it", ErrExtraneousBlob, extra[0], len(extra)-1)
	}
	return nil
}

// readRoot reads the package root index and its metadata manifest.
func (a *Archive) readRoot(ctx context.Context, root ocispec.Descriptor) error {
	a.root = root
	if !a.Has(root.Digest) {
		return fmt.Errorf("%w: the package root %s is missing from the archive", ErrNotPackage, root.Digest)
	}
	b, err := fetchJSON(ctx, a, root)
	if err != nil {
		return fmt.Errorf("reading the package root: %w", err)
	}
	if err := json.Unmarshal(b, &a.rootIndex); err != nil {
		return fmt.Errorf("%w: decoding the package root %s: %w", ErrNotPackage, root.Digest, err)
	}
	if a.metaDesc, err = findMetadata(a.rootIndex); err != nil {
		return err
	}
	if b, err = fetchJSON(ctx, a, a.metaDesc); err != nil {
		return fmt.Errorf("reading the metadata manifest: %w", err)
	}
	if err := json.Unmarshal(b, &a.metaManifest); err != nil {
		return fmt.Errorf("%w: decoding the metadata manifest %s: %w", ErrNotPackage, a.metaDesc.Digest, err)
	}
	return nil
}

// Dependencies returns the package roots of the dependencies bundled in
// the package (build --with-deps), each annotated with
// [AnnotationDependency] (the dependency's name) and its ref name.
func (a *Archive) Dependencies() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, m := range a.rootIndex.Manifests {
		if m.ArtifactType == ArtifactTypePackage {
			out = append(out, m)
		}
	}
	return out
}

// Sub returns a view of the archive rooted at a bundled dependency's
// package root (one of [Archive.Dependencies]). The view shares the file:
// closing it does nothing. It has no signatures of its own: the outer
// package's signature covers it.
func (a *Archive) Sub(ctx context.Context, root ocispec.Descriptor) (*Archive, error) {
	if root.ArtifactType != ArtifactTypePackage || root.MediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%w: %s is not a bundled package root", ErrNotPackage, root.Digest)
	}
	s := &Archive{f: a.f, path: a.path, blobs: a.blobs, index: ocispec.Index{}, sub: true}
	if err := s.readRoot(ctx, root); err != nil {
		return nil, fmt.Errorf("bundled dependency %s: %w", root.Annotations[AnnotationDependency], err)
	}
	return s, nil
}

// readLayout reads and checks the oci-layout member.
func readLayout(r io.Reader, hdr *tar.Header) error {
	if hdr.Size > 4096 {
		return fmt.Errorf("%w: %s is %d bytes", ErrNotPackage, memberLayout, hdr.Size)
	}
	b, err := readMember(r, hdr)
	if err != nil {
		return err
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("%w: %s is not %s", ErrNotPackage, memberLayout, layoutJSON)
	}
	return nil
}

// readIndex reads and decodes the index.json member.
func readIndex(r io.Reader, hdr *tar.Header) (ocispec.Index, error) {
	var idx ocispec.Index
	if hdr.Size > maxJSON {
		return idx, fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", ErrNotPackage, memberIndex, hdr.Size, maxJSON)
	}
	b, err := readMember(r, hdr)
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("%w: decoding %s: %w", ErrNotPackage, memberIndex, err)
	}
	return idx, nil
}

// readMember reads a small member whole.
func readMember(r io.Reader, hdr *tar.Header) ([]byte, error) {
	b := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, truncatedAt(hdr.Name)
		}
		return nil, fmt.Errorf("reading %s: %w", hdr.Name, err)
	}
	return b, nil
}

// findRoot returns the one package root index.json lists.
func findRoot(idx ocispec.Index) (ocispec.Descriptor, error) {
	var roots []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.ArtifactType == ArtifactTypePackage {
			roots = append(roots, m)
		}
	}
	switch {
	case len(roots) == 0:
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s lists no package root (artifact type %s)", ErrNotPackage, memberIndex, ArtifactTypePackage)
	case len(roots) > 1:
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s lists %d package roots, want one", ErrNotPackage, memberIndex, len(roots))
	}
	r := roots[0]
	if r.MediaType != ocispec.MediaTypeImageIndex {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the package root has media type %q, want %q", ErrNotPackage, r.MediaType, ocispec.MediaTypeImageIndex)
	}
	if err := checkDescriptor(r); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the package root: %w", ErrNotPackage, err)
	}
	return r, nil
}

// findMetadata returns the one metadata manifest the root index lists.
func findMetadata(root ocispec.Index) (ocispec.Descriptor, error) {
	var found []ocispec.Descriptor
	for _, m := range root.Manifests {
		if m.ArtifactType == ArtifactTypeMetadata {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the package root lists %d metadata manifests, want one", ErrNotPackage, len(found))
	}
	if found[0].MediaType != ocispec.MediaTypeImageManifest {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the metadata manifest has media type %q", ErrNotPackage, found[0].MediaType)
	}
	return found[0], nil
}

// Path returns the archive's file name.
func (a *Archive) Path() string { return a.path }

// Root returns the package root descriptor, as index.json lists it.
func (a *Archive) Root() ocispec.Descriptor { return a.root }

// Index returns the archive's index.json.
func (a *Archive) Index() ocispec.Index { return a.index }

// Images returns the images the package root lists, each annotated with
// its reference (org.opencontainers.image.ref.name).
func (a *Archive) Images() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, m := range a.rootIndex.Manifests {
		if m.ArtifactType != ArtifactTypeMetadata && m.ArtifactType != ArtifactTypePackage {
			out = append(out, m)
		}
	}
	return out
}

// Layers returns the metadata layers (charts, manifest sets, files, SBOMs).
func (a *Archive) Layers() []ocispec.Descriptor { return a.metaManifest.Layers }

// Layer opens the metadata layer with the given media type and title (the
// component name; "" matches any). The reader verifies the content at EOF.
func (a *Archive) Layer(ctx context.Context, mediaType, title string) (io.ReadCloser, ocispec.Descriptor, error) {
	for _, l := range a.metaManifest.Layers {
		if l.MediaType == mediaType && (title == "" || l.Annotations[AnnotationTitle] == title) {
			rc, err := a.Fetch(ctx, l)
			return rc, l, err
		}
	}
	return nil, ocispec.Descriptor{}, fmt.Errorf("package has no %s layer titled %q: %w", mediaType, title, errdef.ErrNotFound)
}

// Description reads the package description.
func (a *Archive) Description(ctx context.Context) (*Description, error) {
	cfg := a.metaManifest.Config
	if cfg.MediaType != MediaTypeConfig {
		return nil, fmt.Errorf("%w: the metadata config has media type %q, want %q", ErrNotPackage, cfg.MediaType, MediaTypeConfig)
	}
	b, err := fetchJSON(ctx, a, cfg)
	if err != nil {
		return nil, fmt.Errorf("reading the package description: %w", err)
	}
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: decoding the package description: %w", ErrNotPackage, err)
	}
	return &d, nil
}

// Signatures reads the signatures index.json lists, in index order.
func (a *Archive) Signatures(ctx context.Context) ([]Signature, error) {
	var out []Signature
	for _, m := range a.index.Manifests {
		if m.ArtifactType != ArtifactTypeSignature {
			continue
		}
		env, err := a.readSignature(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("reading signature %s: %w", m.Digest, err)
		}
		out = append(out, Signature{Descriptor: m, Envelope: env})
	}
	return out, nil
}

func (a *Archive) readSignature(ctx context.Context, m ocispec.Descriptor) ([]byte, error) {
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%w: media type %q, want %q", ErrNotPackage, m.MediaType, ocispec.MediaTypeImageManifest)
	}
	b, err := fetchJSON(ctx, a, m)
	if err != nil {
		return nil, err
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("%w: decoding: %w", ErrNotPackage, err)
	}
	if man.Subject == nil || man.Subject.Digest != a.root.Digest {
		return nil, fmt.Errorf("%w: its subject is not the package root %s", ErrNotPackage, a.root.Digest)
	}
	if len(man.Layers) != 1 || man.Layers[0].MediaType != MediaTypeDSSE {
		return nil, fmt.Errorf("%w: want exactly one %s layer", ErrNotPackage, MediaTypeDSSE)
	}
	return fetchJSON(ctx, a, man.Layers[0])
}

// Has reports whether the archive holds blob d.
func (a *Archive) Has(d digest.Digest) bool {
	_, ok := a.blobs[d]
	return ok
}

// Exists reports whether the archive holds the target blob.
func (a *Archive) Exists(_ context.Context, target ocispec.Descriptor) (bool, error) {
	return a.Has(target.Digest), nil
}

// Fetch returns a reader of the target blob. The reader fails with
// ErrDigestMismatch at EOF if the content does not match the digest.
func (a *Archive) Fetch(_ context.Context, target ocispec.Descriptor) (io.ReadCloser, error) {
	s, ok := a.blobs[target.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s is not in %s: %w", target.Digest, a.path, errdef.ErrNotFound)
	}
	if target.Size != s.size {
		return nil, fmt.Errorf("%w: blob %s has %d bytes in %s, its descriptor says %d", ErrSizeMismatch, target.Digest, s.size, a.path, target.Size)
	}
	return &verifyingReader{r: io.NewSectionReader(a.f, s.off, s.size), h: sha256.New(), want: target.Digest}, nil
}

// Close closes the archive file (a [Archive.Sub] view leaves it open).
func (a *Archive) Close() error {
	if a.sub {
		return nil
	}
	return a.f.Close()
}

// verifyingReader hashes what it reads and fails at EOF on a mismatch.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
	err  error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if cerr := checkDigest(v.h, v.want); cerr != nil {
			err = cerr
		}
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) Close() error { return nil }
