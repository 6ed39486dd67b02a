package bundle

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxUSTARSize is the largest size a USTAR header holds (11 octal digits).
// Larger blobs get a PAX extended header carrying the size.
const maxUSTARSize = 1<<33 - 1

// layoutJSON is the content of the oci-layout member.
const layoutJSON = `{"imageLayoutVersion":"1.0.0"}`

// header returns the fixed tar header of a member.
func header(name string, size int64) *tar.Header {
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if size > maxUSTARSize {
		h.Format = tar.FormatPAX
	}
	return h
}

// blobName returns the member name of a blob.
func blobName(d digest.Digest) string { return blobPrefix + d.Encoded() }

type memberKind int

const (
	kindLayout memberKind = iota
	kindIndex
	kindBlob
)

// members checks the member sequence rules every reader enforces: regular
// files with expected names, each once; oci-layout first; then either
// index.json and the blobs sorted by digest (archives written before
// index.json moved to the end), or the blobs and index.json last.
type members struct {
	n     int                 // members seen
	last  string              // name of the last member seen
	seen  map[string]struct{} // names seen
	index int                 // position of index.json, 0 until seen
	// lastBlob is the name of the last blob seen.
	lastBlob string
}

// next checks hdr, the next member, and returns its kind and, for a blob,
// its digest.
func (m *members) next(hdr *tar.Header) (memberKind, digest.Digest, error) {
	name := hdr.Name
	if err := unsafeName(name); err != nil {
		return 0, "", err
	}
	if hdr.Typeflag != tar.TypeReg {
		return 0, "", fmt.Errorf("%w %q: not a regular file (type %q): the archive was not written by skiff; do not use it", ErrUnsafePath, name, hdr.Typeflag)
	}
	if hdr.Size < 0 {
		return 0, "", fmt.Errorf("%w: member %q has negative size", ErrCorrupt, name)
	}
	if _, dup := m.seen[name]; dup {
		return 0, "", fmt.Errorf("%w %q: it appears twice: the archive was not written by skiff; do not use it", ErrUnsafePath, name)
	}
	var kind memberKind
	var d digest.Digest
	switch {
	case name == memberLayout:
		kind = kindLayout
	case name == memberIndex:
		kind = kindIndex
	case strings.HasPrefix(name, blobPrefix):
		hex := name[len(blobPrefix):]
		if !isHex64(hex) {
			return 0, "", fmt.Errorf("%w %q: unexpected name: the archive was not written by skiff; do not use it", ErrUnsafePath, name)
		}
		kind, d = kindBlob, digest.NewDigestFromEncoded(digest.SHA256, hex)
	default:
		return 0, "", fmt.Errorf("%w %q: unexpected name: the archive was not written by skiff; do not use it", ErrUnsafePath, name)
	}
	switch {
	case m.n == 0 && kind != kindLayout:
		return 0, "", fmt.Errorf("%w: the first member is %q, not %s", ErrNotPackage, name, memberLayout)
	case m.n > 0 && kind == kindLayout:
		return 0, "", fmt.Errorf("%w %q: it appears twice: the archive was not written by skiff; do not use it", ErrUnsafePath, name)
	case m.index > 1:
		// index.json after the blobs ends the archive.
		return 0, "", fmt.Errorf("%w: member %q comes after %s, which must be the last member", ErrNotPackage, name, memberIndex)
	case m.index == 1 && name < m.lastBlob:
		return 0, "", fmt.Errorf("%w: member %q comes after %q: blobs after %s must be sorted by digest", ErrNotPackage, name, m.lastBlob, memberIndex)
	}
	if m.seen == nil {
		m.seen = make(map[string]struct{})
	}
	m.seen[name] = struct{}{}
	switch kind {
	case kindIndex:
		m.index = m.n
	case kindBlob:
		m.lastBlob = name
	}
	m.n++
	m.last = name
	return kind, d, nil
}

// unsafeName rejects names that could escape an extraction directory.
func unsafeName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty name"
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || (len(name) > 1 && name[1] == ':'):
		why = "absolute path"
	case strings.Contains(name, `\`):
		why = "backslash in its path"
	case name == ".." || strings.HasPrefix(name, "../") || strings.HasSuffix(name, "/..") || strings.Contains(name, "/../"):
		why = `".." in its path`
	case strings.ContainsRune(name, 0):
		why = "NUL byte in its path"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s: the archive was not written by skiff; do not use it", ErrUnsafePath, name, why)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// countReader counts the bytes read and records whether the underlying
// reader reported EOF: tar.Reader accepts an archive that ends at a member
// boundary without its end-of-archive marker, and this tells the two apart.
type countReader struct {
	r   io.Reader
	pos int64
	eof bool
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pos += int64(n)
	if errors.Is(err, io.EOF) {
		c.eof = true
	}
	return n, err
}

// seekCountReader is a countReader over a seekable file, so that tar.Reader
// skips member data by seeking.
type seekCountReader struct {
	countReader
	s io.Seeker
}

func (c *seekCountReader) Seek(off int64, whence int) (int64, error) {
	p, err := c.s.Seek(off, whence)
	if err == nil {
		c.pos = p
	}
	return p, err
}

// tarReader reads members with the checks above and maps tar errors to the
// package's sentinels.
type tarReader struct {
	tr *tar.Reader
	cr *countReader
	m  members
}

// next returns the next member, or io.EOF after a complete archive.
func (t *tarReader) next() (*tar.Header, memberKind, digest.Digest, error) {
	hdr, err := t.tr.Next()
	if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
		err = nil // the name checks below reject it with the member named
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if t.cr.eof {
			return nil, 0, "", t.truncated()
		}
		if t.m.index == 0 {
			return nil, 0, "", fmt.Errorf("%w: the archive has no %s", ErrNotPackage, memberIndex)
		}
		return nil, 0, "", io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, 0, "", t.truncated()
	case errors.Is(err, tar.ErrHeader) && t.m.n == 0:
		return nil, 0, "", fmt.Errorf("%w: the file is not a tar archive", ErrNotPackage)
	case errors.Is(err, tar.ErrHeader):
		return nil, 0, "", fmt.Errorf("%w: the tar header after member %q is invalid: copy the archive again", ErrCorrupt, t.m.last)
	default:
		return nil, 0, "", fmt.Errorf("reading archive after member %q: %w", t.m.last, err)
	}
	kind, d, err := t.m.next(hdr)
	if err != nil {
		return nil, 0, "", err
	}
	return hdr, kind, d, nil
}

// truncated is the error for an archive that ends early, naming the last
// member seen.
func (t *tarReader) truncated() error {
	at := t.m.last
	if at == "" {
		if t.cr.pos == 0 {
			return fmt.Errorf("%w: the file is empty", ErrNotPackage)
		}
		at = memberLayout
	}
	return truncatedAt(at)
}

func truncatedAt(member string) error {
	return fmt.Errorf("%w at member %s: the copy is incomplete; copy it again or `skiff join` its parts", ErrTruncated, member)
}
