// Package split cuts an archive into parts of a fixed size for media that
// cannot hold it whole (a 4 GiB FAT32 stick, a DVD), adds Reed–Solomon
// parity parts so that lost or damaged parts can be rebuilt, and joins the
// parts again, verifying every byte.
//
// A split of pkg.skiff writes pkg.skiff.part-001 … (the archive's bytes in
// order), pkg.skiff.parity-001 … (parity, when asked for) and
// pkg.skiff.parts.json, the manifest that names them all with their sha256.
package split

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrBadManifest: the parts manifest is malformed or inconsistent.
	ErrBadManifest = errors.New("invalid parts manifest")
	// ErrTooDamaged: more parts are missing or corrupt than the parity
	// parts can rebuild.
	ErrTooDamaged = errors.New("too many parts missing or corrupt")
	// ErrChecksum: the joined archive does not hash to the manifest's
	// sha256.
	ErrChecksum = errors.New("joined archive checksum mismatch")
)

// ManifestVersion is the version of the parts manifest format.
const ManifestVersion = 1

// MaxShards bounds data plus parity parts when parity is used (the
// Reed–Solomon code works over GF(2^8)); without parity, data parts are
// bounded by MaxParts.
const (
	MaxShards = 256
	MaxParts  = 9999
)

// maxManifestBytes bounds the manifest a reader loads.
const maxManifestBytes = 4 << 20

// Manifest describes a split archive (ARCHIVE.parts.json).
type Manifest struct {
	Version int `json:"version"`
	// Archive is the file that was split.
	Archive File `json:"archive"`
	// PartSize is the size of every data part but the last, which holds
	// the rest; parity parts are as large as the first data part.
	PartSize int64 `json:"partSize"`
	// Parity is the number of parity parts: up to that many lost or
	// corrupt parts (data or parity) can be rebuilt.
	Parity int `json:"parity"`
	// Parts are the data parts in order, then the parity parts.
	Parts []Part `json:"parts"`
}

// File names a file by its base name, size and sha256 (hex).
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Part is one part file, named relative to the manifest's directory.
type Part struct {
	File
	// Parity marks a parity part.
	Parity bool `json:"parity,omitempty"`
}

// ManifestPath returns the manifest path for an archive path.
func ManifestPath(archive string) string { return archive + ".parts.json" }

func partName(archive string, i int) string   { return fmt.Sprintf("%s.part-%03d", archive, i+1) }
func parityName(archive string, i int) string { return fmt.Sprintf("%s.parity-%03d", archive, i+1) }

// Data returns the data parts.
func (m *Manifest) Data() []Part { return m.Parts[:len(m.Parts)-m.Parity] }

// shardSize is the length of every Reed–Solomon shard: the first data
// part's size.
func (m *Manifest) shardSize() int64 { return min(m.PartSize, m.Archive.Size) }

// layout returns the data part count and sizes for an archive of size
// bytes cut into parts of partSize.
func layout(size, partSize int64) []int64 {
	if size == 0 {
		return []int64{0}
	}
	n := (size + partSize - 1) / partSize
	if n > MaxParts+1 { // the caller reports the error; avoid a huge slice
		n = MaxParts + 1
	}
	sizes := make([]int64, n)
	for i := range sizes {
		sizes[i] = min(partSize, size-int64(i)*partSize)
	}
	return sizes
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReadManifest reads and checks the parts manifest at path.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading parts manifest: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading parts manifest %s: %w", path, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseManifest decodes and checks a parts manifest: the version, that
// every name is a plain file name, that the part sizes follow from the
// archive size and part size, and the checksums' form.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadManifest, maxManifestBytes)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v: pass the .parts.json file written by skiff split", ErrBadManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadManifest)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("version %d, want %d: this skiff is too old or the file is not a parts manifest", m.Version, ManifestVersion)
	}
	if err := checkFile(m.Archive); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if m.PartSize <= 0 {
		return fmt.Errorf("part size %d is not positive", m.PartSize)
	}
	if m.Parity < 0 || m.Parity >= MaxShards {
		return fmt.Errorf("parity %d out of range", m.Parity)
	}
	sizes := layout(m.Archive.Size, m.PartSize)
	if len(sizes) > MaxParts {
		return fmt.Errorf("more than %d parts", MaxParts)
	}
	if m.Parity > 0 && len(sizes)+m.Parity > MaxShards {
		return fmt.Errorf("%d data and %d parity parts: more than %d", len(sizes), m.Parity, MaxShards)
	}
	if len(m.Parts) != len(sizes)+m.Parity {
		return fmt.Errorf("%d parts listed, but a %d-byte archive in %d-byte parts with %d parity parts has %d",
			len(m.Parts), m.Archive.Size, m.PartSize, m.Parity, len(sizes)+m.Parity)
	}
	names := map[string]bool{m.Archive.Name: true}
	for i, p := range m.Parts {
		if err := checkFile(p.File); err != nil {
			return fmt.Errorf("part %d: %v", i+1, err)
		}
		if names[p.Name] {
			return fmt.Errorf("part %d: name %q used twice", i+1, p.Name)
		}
		names[p.Name] = true
		parity := i >= len(sizes)
		if p.Parity != parity {
			return fmt.Errorf("part %d (%s): parity flag %v out of place: data parts come first", i+1, p.Name, p.Parity)
		}
		want := m.shardSize()
		if !parity {
			want = sizes[i]
		}
		if p.Size != want {
			return fmt.Errorf("part %d (%s) is listed with %d bytes, want %d", i+1, p.Name, p.Size, want)
		}
	}
	return nil
}

func checkFile(f File) error {
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, `/\`+"\x00") || filepath.Base(f.Name) != f.Name {
		return fmt.Errorf("name %q is not a plain file name", f.Name)
	}
	if f.Size < 0 {
		return fmt.Errorf("%s: negative size", f.Name)
	}
	if !hexSHA256.MatchString(f.SHA256) {
		return fmt.Errorf("%s: sha256 %q is not 64 lowercase hex digits", f.Name, f.SHA256)
	}
	return nil
}

// ParseSize parses a part size: a number of bytes with an optional unit
// K, M, G or T (powers of 1024; KiB, KB, k… are accepted alike).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	u := strings.ToUpper(t)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = u[:n-1]
		}
	}
	var n int64
	if u == "" || len(u) > 15 {
		return 0, fmt.Errorf("invalid size %q: use bytes or a number with K, M, G or T, e.g. 4G", s)
	}
	for _, c := range u {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid size %q: use bytes or a number with K, M, G or T, e.g. 4G", s)
		}
		n = n*10 + int64(c-'0')
	}
	if n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: must be positive", s)
	}
	return n * mult, nil
}
