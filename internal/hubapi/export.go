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
	"strings"
)

// ExportFormat identifies a hub export (the manifest's format field).
const ExportFormat = "skiff-hub-export/v2"

// exportFormatV1 is the format of exports written before blobs were
// stored once: one whole archive per package.
const exportFormatV1 = "skiff-hub-export/v1"

// InventoryFormat identifies a hub inventory.
const InventoryFormat = "skiff-hub-inventory/v1"

// ExportManifestName is the first member of an export: the manifest.
const ExportManifestName = "export.json"

// maxExportManifest bounds the manifest read from an export.
const maxExportManifest = 64 << 20

// ErrBadExport reports an export that is damaged, altered or not an
// export at all; nothing of it was stored.
var ErrBadExport = errors.New("invalid hub export")

var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// ValidName reports whether s is a valid user, group or owner name: lower
// case letters and digits, separated by single '.', '_' or '-'.
func ValidName(s string) bool { return len(s) <= 64 && nameRE.MatchString(s) }

var versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

var sha256RE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest reports whether s is a sha256 digest in canonical form.
func ValidDigest(s string) bool { return sha256RE.MatchString(s) }

// ExportBlobPath is where an export stores a blob.
func ExportBlobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// ReadExport reads an export from r: the manifest (passed to manifest,
// if set, before any blob is read; its error stops the reading), then
// every blob, each passed to blob (which may read it or not) and checked
// against its size and sha256 afterwards. Any damage, alteration,
// missing, extra or repeated member, or a package whose root or
// signature is neither in the export nor omitted, is an error wrapping
// ErrBadExport; the callbacks' own errors are returned as they are.
func ReadExport(r io.Reader, manifest func(*ExportManifest) error, blob func(b ExportBlob, r io.Reader) error) (*ExportManifest, error) {
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
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(mb, &head); err != nil {
		return nil, bad("decoding the manifest: %v", err)
	}
	switch head.Format {
	case ExportFormat:
	case exportFormatV1:
		return nil, bad("format %s stores each package as a whole archive, which this version of skiff no longer reads: export again with this version of skiff on the exporting hub (%s stores each blob once)", exportFormatV1, ExportFormat)
	default:
		return nil, bad("format %q, want %s: export it again with this version of skiff", head.Format, ExportFormat)
	}
	var m ExportManifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, bad("decoding the manifest: %v", err)
	}
	if err := checkExportManifest(&m); err != nil {
		return nil, bad("%v", err)
	}
	if manifest != nil {
		if err := manifest(&m); err != nil {
			return nil, err
		}
	}
	byPath := make(map[string]int, len(m.Blobs))
	for i, b := range m.Blobs {
		byPath[ExportBlobPath(b.Digest)] = i
	}
	seen := make([]bool, len(m.Blobs))
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
		b := m.Blobs[i]
		if hdr.Size != b.Size {
			return nil, bad("blob %s is %d bytes, the manifest says %d: the export was altered or damaged; export it again", b.Digest, hdr.Size, b.Size)
		}
		hs := sha256.New()
		body := io.TeeReader(tr, hs)
		if blob != nil {
			if err := blob(b, body); err != nil {
				return nil, err
			}
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, bad("reading blob %s: %v", b.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(hs.Sum(nil)); got != b.Digest {
			return nil, bad("blob %s has sha256 %s: the export was altered or damaged; export it again", b.Digest, got)
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, bad("blob %s is listed but missing: the export is truncated; copy it again", m.Blobs[i].Digest)
		}
	}
	return &m, nil
}

// checkExportManifest checks the manifest's names and digests: valid
// package names, each package once, each blob listed once (in the export
// or omitted), every root and signature listed.
func checkExportManifest(m *ExportManifest) error {
	listed := make(map[string]bool, len(m.Blobs)+len(m.Omitted))
	for _, list := range [][]ExportBlob{m.Blobs, m.Omitted} {
		for _, b := range list {
			if !ValidDigest(b.Digest) || b.Size < 0 {
				return fmt.Errorf("blob %q has an invalid digest or size", b.Digest)
			}
			if listed[b.Digest] {
				return fmt.Errorf("blob %s is listed twice", b.Digest)
			}
			listed[b.Digest] = true
		}
	}
	refs := map[string]bool{}
	for i, e := range m.Packages {
		if !nameRE.MatchString(e.Owner) || !nameRE.MatchString(e.Name) || !versionRE.MatchString(e.Version) {
			return fmt.Errorf("entry %d names an invalid package %q", i, e.Ref())
		}
		if refs[e.Ref()] {
			return fmt.Errorf("%s is listed twice", e.Ref())
		}
		refs[e.Ref()] = true
		for _, d := range append([]string{e.Digest}, e.Signatures...) {
			if !listed[d] {
				return fmt.Errorf("%s needs %q, which is neither in the export nor omitted", e.Ref(), d)
			}
		}
	}
	return nil
}
