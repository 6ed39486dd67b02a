package hubapi

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// ExportFormat identifies a hub export (the manifest's format field).
const ExportFormat = "skiff-hub-export/v1"

// ExportManifestName is the first member of an export: the manifest.
const ExportManifestName = "export.json"

// maxExportManifest bounds the manifest read from an export.
const maxExportManifest = 16 << 20

// ErrBadExport reports an export that is damaged, altered or not an
// export at all; nothing of it was stored.
var ErrBadExport = errors.New("invalid hub export")

var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// ValidName reports whether s is a valid user, group or owner name: lower
// case letters and digits, separated by single '.', '_' or '-'.
func ValidName(s string) bool { return len(s) <= 64 && nameRE.MatchString(s) }

var versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// ExportPath is where an export stores a package's archive.
func ExportPath(owner, name, version string) string {
	return "packages/" + owner + "/" + name + "/" + version + ".skiff"
}

// ReadExport reads an export from r: the manifest, then every entry,
// each passed to fn (which may read it or not) and checked against its
// size and sha256 afterwards. Any damage, alteration, missing, extra or
// repeated entry is an error wrapping ErrBadExport; fn's own errors are
// returned as they are.
func ReadExport(r io.Reader, fn func(e ExportEntry, r io.Reader) error) (*ExportManifest, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadExport}, args...)...)
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, bad("reading the first member: %v: is this a file written by `skiff hub export`?", err)
	}
	if hdr.Name != ExportManifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxExportManifest {
		return nil, bad("the first member is %q, not the manifest %s: is this a file written by `skiff hub export`?", hdr.Name, ExportManifestName)
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return nil, bad("reading the manifest: %v", err)
	}
	var m ExportManifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, bad("decoding the manifest: %v", err)
	}
	if m.Format != ExportFormat {
		return nil, bad("format %q, want %s: export it again with this version of skiff", m.Format, ExportFormat)
	}
	byPath := map[string]int{}
	for i, e := range m.Packages {
		if !nameRE.MatchString(e.Owner) || !nameRE.MatchString(e.Name) || !versionRE.MatchString(e.Version) {
			return nil, bad("entry %d names an invalid package %q", i, e.Ref())
		}
		if e.Path != ExportPath(e.Owner, e.Name, e.Version) {
			return nil, bad("entry %s has path %q, want %q", e.Ref(), e.Path, ExportPath(e.Owner, e.Name, e.Version))
		}
		if _, dup := byPath[e.Path]; dup {
			return nil, bad("%s is listed twice", e.Ref())
		}
		if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size || e.Size < 0 {
			return nil, bad("entry %s has an invalid sha256 or size", e.Ref())
		}
		byPath[e.Path] = i
	}
	seen := make([]bool, len(m.Packages))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("reading: %v: the export is truncated or damaged; copy it again", err)
		}
		i, ok := byPath[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return nil, bad("member %q is not listed in the manifest: the export was altered", hdr.Name)
		}
		if seen[i] {
			return nil, bad("member %q appears twice: the export was altered", hdr.Name)
		}
		seen[i] = true
		e := m.Packages[i]
		if hdr.Size != e.Size {
			return nil, bad("%s is %d bytes, the manifest says %d: the export was altered or damaged; export it again", e.Ref(), hdr.Size, e.Size)
		}
		hs := sha256.New()
		body := io.TeeReader(tr, hs)
		if err := fn(e, body); err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, bad("reading %s: %v", e.Ref(), err)
		}
		if got := hex.EncodeToString(hs.Sum(nil)); got != e.SHA256 {
			return nil, bad("%s has sha256 %s, the manifest says %s: the export was altered or damaged; export it again", e.Ref(), got, e.SHA256)
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, bad("%s is listed but missing: the export is truncated; copy it again", m.Packages[i].Ref())
		}
	}
	return &m, nil
}
