// Package sbom writes CycloneDX 1.5 JSON software bills of materials,
// offline, from image layers themselves: it streams each layer once and
// catalogs Debian (dpkg) and Alpine (apk) packages, Go binaries (build
// information), npm packages and Python distributions, honouring
// whiteouts across layers. It also describes a package's charts and
// files.
package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
)

// ErrNotSBOM is returned when data is not a CycloneDX JSON document.
var ErrNotSBOM = errors.New("not a CycloneDX JSON SBOM")

// Options configure [Generate] and [Package].
type Options struct {
	// Ref is the image reference recorded as the SBOM's subject.
	Ref string
	// Platform ("linux/amd64") is recorded; when empty it is read from
	// the image config.
	Platform string
	// Tool names the generator ("skiff v1.2.3"); default "skiff".
	Tool string
	// TempDir holds the spool file for candidate Go binaries; default
	// os.TempDir().
	TempDir string
	// MaxBinarySize is the largest executable inspected for Go build
	// information; if <= 0, 256 MiB.
	MaxBinarySize int64
}

// Manifest is one platform manifest of an image.
type Manifest struct {
	Platform   string
	Descriptor ocispec.Descriptor
}

// Docker v2 media types.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
)

const maxManifestJSON = 4 << 20

func isIndex(mt string) bool { return mt == ocispec.MediaTypeImageIndex || mt == dockerManifestList }
func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == dockerManifest
}

// Manifests walks an image root (an index or a manifest) to its platform
// manifests, in index order. Attestations (unknown/unknown) and artifacts
// that are not container images (a Helm chart) are left out.
func Manifests(ctx context.Context, src content.Fetcher, root ocispec.Descriptor) ([]Manifest, error) {
	switch {
	case isIndex(root.MediaType):
		var idx ocispec.Index
		if err := fetchJSON(ctx, src, root, &idx); err != nil {
			return nil, err
		}
		var out []Manifest
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS == "unknown" {
				continue
			}
			sub, err := Manifests(ctx, src, m)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
		return out, nil
	case isManifest(root.MediaType):
		var man ocispec.Manifest
		if err := fetchJSON(ctx, src, root, &man); err != nil {
			return nil, err
		}
		if man.Config.MediaType != ocispec.MediaTypeImageConfig && man.Config.MediaType != dockerConfig {
			return nil, nil
		}
		plat := root.Platform
		if plat == nil {
			var cfg ocispec.Image
			if err := fetchJSON(ctx, src, man.Config, &cfg); err != nil {
				return nil, err
			}
			plat = &cfg.Platform
		}
		d := root
		d.Platform = nil
		return []Manifest{{Platform: formatPlatform(*plat), Descriptor: d}}, nil
	}
	return nil, nil
}

func formatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func fetchJSON(ctx context.Context, src content.Fetcher, d ocispec.Descriptor, v any) error {
	if d.Size > maxManifestJSON {
		return fmt.Errorf("%s %s is %d bytes, more than the %d allowed", d.MediaType, d.Digest, d.Size, maxManifestJSON)
	}
	b, err := content.FetchAll(ctx, src, d)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.Digest, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %s %s: %w", d.MediaType, d.Digest, err)
	}
	return nil
}

// Generate catalogs the layers of one platform manifest and returns its
// CycloneDX JSON SBOM. The output depends only on the image content and
// o: components are sorted, there is no timestamp and the serial number
// derives from the manifest digest. Layers that are not tar archives are
// skipped and listed as skiff:skipped-layer properties.
func Generate(ctx context.Context, src content.Fetcher, image ocispec.Descriptor, o Options) ([]byte, error) {
	if !isManifest(image.MediaType) {
		return nil, fmt.Errorf("SBOM of %s: %s is a %s, not an image manifest: walk it with sbom.Manifests first", o.Ref, image.Digest, image.MediaType)
	}
	man, err := imageManifest(ctx, src, image, &o)
	if err != nil {
		return nil, err
	}
	sc := newScanner(o)
	defer sc.close()
	scans := map[digest.Digest]*layerScan{}
	for _, l := range man.Layers {
		if _, ok := scans[l.Digest]; ok {
			continue
		}
		if scans[l.Digest], err = sc.scanBlob(ctx, src, l); err != nil {
			return nil, fmt.Errorf("SBOM of %s (%s): %w", o.Ref, o.Platform, err)
		}
	}
	return compose(man.Layers, scans, image.Digest, o).marshal()
}

// imageManifest reads an image manifest and, when o.Platform is empty,
// sets it from the image config.
func imageManifest(ctx context.Context, src content.Fetcher, image ocispec.Descriptor, o *Options) (*ocispec.Manifest, error) {
	var man ocispec.Manifest
	if err := fetchJSON(ctx, src, image, &man); err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", o.Ref, err)
	}
	if o.Platform == "" {
		var cfg ocispec.Image
		if err := fetchJSON(ctx, src, man.Config, &cfg); err == nil {
			o.Platform = formatPlatform(cfg.Platform)
		}
	}
	return &man, nil
}

// layerScan is what one layer holds for the catalogers, whatever image it
// is part of, so that a layer shared by several images is read once.
// [compose] applies the scans of an image's layers in order.
type layerScan struct {
	skipped   bool               // not a tar archive: nothing cataloged
	found     map[string][]found // files in which packages were found, by path
	os        map[string]string  // the layer's os-release, if any
	osPath    string
	whiteouts []whiteout
	paths     []uint64 // sorted hashes of every other path: they hide what earlier layers put there
}

// whiteout removes path and what is below it (self), or only what is
// below it (an opaque directory), from earlier layers.
type whiteout struct {
	path string
	self bool
}

func pathHash(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

// hides reports whether the layer has an entry at p.
func (l *layerScan) hides(p string) bool {
	_, ok := slices.BinarySearch(l.paths, pathHash(p))
	return ok
}

// scanner reads layers; it holds a spool file for Go binaries.
type scanner struct {
	o     Options
	spool *os.File
	br    *bufio.Reader
}

func newScanner(o Options) *scanner {
	if o.MaxBinarySize <= 0 {
		o.MaxBinarySize = 256 << 20
	}
	return &scanner{o: o, br: bufio.NewReaderSize(nil, 64<<10)}
}

func (s *scanner) close() {
	if s.spool != nil {
		s.spool.Close()
		os.Remove(s.spool.Name())
	}
}

// decompress sniffs gzip and zstd; anything else is read as plain tar.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		zr.Multistream(true)
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// scanBlob fetches and scans one layer.
func (s *scanner) scanBlob(ctx context.Context, src content.Fetcher, l ocispec.Descriptor) (*layerScan, error) {
	rc, err := src.Fetch(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("fetching layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	ls, err := s.scan(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	return ls, nil
}

// scan streams one layer through the catalogers.
func (s *scanner) scan(ctx context.Context, r io.Reader) (*layerScan, error) {
	ls := &layerScan{found: map[string][]found{}}
	dr, done, err := decompress(r)
	if err != nil {
		return &layerScan{skipped: true}, nil
	}
	defer done()
	tr := tar.NewReader(dr)
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n == 0 {
				// Not a tar archive (or an empty, malformed one): nothing to catalog.
				return &layerScan{skipped: true}, nil
			}
			return nil, fmt.Errorf("reading the layer: %w", err)
		}
		p := cleanPath(h.Name)
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		if wh, ok := strings.CutPrefix(base, ".wh."); ok {
			if wh == ".wh..opq" {
				ls.whiteouts = append(ls.whiteouts, whiteout{strings.TrimSuffix(dir, "/"), false})
			} else {
				ls.whiteouts = append(ls.whiteouts, whiteout{dir + wh, true})
			}
			continue
		}
		ls.paths = append(ls.paths, pathHash(p))
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		fs, err := s.catalog(ls, p, h, tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(fs) > 0 {
			ls.found[p] = fs
		}
	}
	slices.Sort(ls.paths)
	ls.paths = slices.Compact(ls.paths)
	return ls, nil
}

// catalog is the state of an image's catalog as its layers are applied.
type catalog struct {
	o       Options
	files   map[string]entry // cataloged files by path
	os      map[string]string
	osPath  string
	osLayer int
	skipped []string
}

type entry struct {
	layer  int
	digest digest.Digest
	found  []found
}

// compose applies the scans of an image's layers, in order, and returns
// the image's document.
func compose(layers []ocispec.Descriptor, scans map[digest.Digest]*layerScan, image digest.Digest, o Options) *BOM {
	c := &catalog{o: o, files: map[string]entry{}, osLayer: -1}
	for i, l := range layers {
		ls := scans[l.Digest]
		if ls.skipped {
			c.skipped = append(c.skipped, l.Digest.String())
			continue
		}
		for _, w := range ls.whiteouts {
			c.remove(w.path, i, w.self)
		}
		for p, e := range c.files {
			if e.layer < i && ls.hides(p) {
				delete(c.files, p)
			}
		}
		for p, fs := range ls.found {
			c.files[p] = entry{layer: i, digest: l.Digest, found: fs}
		}
		if ls.os != nil {
			c.os, c.osPath, c.osLayer = ls.os, ls.osPath, i
		}
	}
	return c.bom(image)
}

// remove applies a whiteout of p (self: p itself and everything below;
// otherwise an opaque directory: only what is below p) to files from
// layers before i.
func (c *catalog) remove(p string, i int, self bool) {
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k, e := range c.files {
		if e.layer < i && (self && k == p || strings.HasPrefix(k, prefix)) {
			delete(c.files, k)
		}
	}
	if c.os != nil && c.osLayer < i && (self && c.osPath == p || strings.HasPrefix(c.osPath, prefix)) {
		c.os, c.osPath, c.osLayer = nil, "", -1
	}
}

func cleanPath(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

func readBounded(r io.Reader, size, limit int64) ([]byte, bool) {
	if size > limit {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r, limit))
	return b, err == nil
}

// catalog reads one regular file if a cataloger wants it; an os-release
// file is recorded in ls.
func (s *scanner) catalog(ls *layerScan, p string, h *tar.Header, r io.Reader) ([]found, error) {
	switch classify(p) {
	case kindDpkg, kindApk:
		if h.Size > maxStatusSize {
			return nil, nil
		}
		lr := io.LimitReader(r, maxStatusSize)
		if classify(p) == kindApk {
			return catalogApk(lr)
		}
		return catalogDpkg(lr)
	case kindNpm:
		if b, ok := readBounded(r, h.Size, maxManifestSize); ok {
			return catalogNpm(b), nil
		}
		return nil, nil
	case kindPython:
		return catalogPython(r), nil
	case kindOSRelease:
		if b, ok := readBounded(r, h.Size, maxOSRelease); ok {
			// Within a layer etc/os-release wins over usr/lib/os-release;
			// a later layer's wins over both.
			if ls.os == nil || p == "etc/os-release" {
				ls.os, ls.osPath = parseOSRelease(b), p
			}
		}
		return nil, nil
	}
	if h.Size < 1024 || h.Size > s.o.MaxBinarySize || (h.Mode&0o111 == 0 && !inBinDir(p)) {
		return nil, nil
	}
	return s.goBinary(h.Size, r)
}

var binDirs = []string{"bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/local/bin/", "usr/local/sbin/", "opt/", "app/", "ko-app/"}

func inBinDir(p string) bool {
	return slices.ContainsFunc(binDirs, func(d string) bool { return strings.HasPrefix(p, d) })
}

// goBinary spools an ELF executable to a temp file and reads its Go
// build information, if any.
func (s *scanner) goBinary(size int64, r io.Reader) ([]found, error) {
	s.br.Reset(r)
	magic, err := s.br.Peek(4)
	if err != nil || !bytes.Equal(magic, []byte("\x7fELF")) {
		return nil, nil
	}
	if s.spool == nil {
		if s.spool, err = os.CreateTemp(s.o.TempDir, "skiff-sbom-*"); err != nil {
			return nil, fmt.Errorf("creating a spool file for Go binaries: %w", err)
		}
	}
	if err := s.spool.Truncate(0); err != nil {
		return nil, err
	}
	if _, err := s.spool.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	n, err := io.Copy(s.spool, io.LimitReader(s.br, size))
	if err != nil {
		return nil, fmt.Errorf("spooling: %w", err)
	}
	bi, err := buildinfo.Read(io.NewSectionReader(s.spool, 0, n))
	if err != nil {
		return nil, nil // not a Go binary
	}
	return goPackages(bi), nil
}

// bom turns the catalog into a document.
func (w *catalog) bom(image digest.Digest) *BOM {
	osID, osVer := "", ""
	if w.os != nil {
		osID, osVer = w.os["ID"], w.os["VERSION_ID"]
	}
	var comps []Component
	for p, e := range w.files {
		for _, f := range e.found {
			c := component(f, osID, osVer)
			c.Properties = append(c.Properties, Property{PropLocation, p}, Property{PropLayer, e.digest.String()})
			comps = append(comps, c)
		}
	}
	if osID != "" {
		comps = append(comps, Component{Type: "operating-system", BOMRef: "os:" + osID, Name: osID, Version: osVer})
	}
	sortComponents(comps)
	// Give repeated purls (one package in several places) unique refs.
	seen := map[string]int{}
	for i := range comps {
		ref := comps[i].BOMRef
		if n := seen[ref]; n > 0 {
			comps[i].BOMRef = fmt.Sprintf("%s#%d", ref, n)
		}
		seen[ref]++
	}
	props := []Property{{PropPlatform, w.o.Platform}}
	if w.o.Ref != "" {
		props = append(props, Property{PropImage, w.o.Ref})
	}
	if osID != "" {
		props = append(props, Property{PropDistro, distro(osID, osVer)})
	}
	for _, s := range w.skipped {
		props = append(props, Property{PropSkippedLayer, s})
	}
	subject := &Component{Type: "container", BOMRef: image.String(), Name: cmp.Or(w.o.Ref, image.String()), Version: image.String()}
	return &BOM{
		BOMFormat: BOMFormat, SpecVersion: SpecVersion, SerialNumber: serial(image.String() + "|" + w.o.Ref), Version: 1,
		Metadata: &Metadata{
			Tools:      &Tools{Components: []Component{{Type: "application", Name: cmp.Or(w.o.Tool, "skiff")}}},
			Component:  subject,
			Properties: props,
		},
		Components: comps,
	}
}

func distro(id, ver string) string {
	if ver == "" {
		return id
	}
	return id + "-" + ver
}

// component builds the CycloneDX component and purl of a found package.
func component(f found, osID, osVer string) Component {
	p := PURL{Type: f.typ, Name: f.name, Version: f.version, Qualifiers: map[string]string{}}
	switch f.typ {
	case "deb":
		p.Namespace = "debian"
		if osID == "ubuntu" {
			p.Namespace = "ubuntu"
		}
		p.Qualifiers["arch"] = f.arch
		if osID == "debian" || osID == "ubuntu" {
			p.Qualifiers["distro"] = distro(osID, osVer)
		}
		p.Qualifiers["upstream"] = f.source
	case "apk":
		p.Namespace = "alpine"
		p.Qualifiers["arch"] = f.arch
		if osID == "alpine" {
			p.Qualifiers["distro"] = distro(osID, osVer)
		}
		p.Qualifiers["upstream"] = f.source
	case "golang":
		if i := strings.LastIndexByte(f.name, '/'); i >= 0 {
			p.Namespace, p.Name = f.name[:i], f.name[i+1:]
		}
	case "npm":
		if scope, name, ok := strings.Cut(f.name, "/"); ok && strings.HasPrefix(scope, "@") {
			p.Namespace, p.Name = scope, name
		}
	case "pypi":
		p.Name = NormalizePyPI(f.name)
	}
	purl := p.String()
	c := Component{Type: "library", BOMRef: purl, Name: f.name, Version: f.version, PURL: purl}
	if f.main {
		c.Type = "application"
	}
	for _, l := range f.licenses {
		c.Licenses = append(c.Licenses, License{License: &LicenseName{Name: l}})
	}
	return c
}

// NormalizePyPI normalizes a Python distribution name (PEP 503).
func NormalizePyPI(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}

// Package returns the SBOM of a package's own content: its charts (name,
// version, archive hash), carried files (sha256) and images (digest). It
// is deterministic for the same description.
func Package(d *bundle.Description, o Options) ([]byte, error) {
	var comps []Component
	for _, c := range d.Charts {
		comps = append(comps, Component{
			Type: "application", BOMRef: "chart:" + c.Name, Name: c.Chart, Version: c.Version,
			Hashes:     hashes(c.Digest),
			Properties: []Property{{"skiff:component", c.Name}, {"skiff:kind", "helm-chart"}},
		})
	}
	for _, f := range d.Files {
		comps = append(comps, Component{
			Type: "file", BOMRef: "file:" + f.Target, Name: f.Target, Hashes: hashes(f.Digest),
			Properties: []Property{{"skiff:size", fmt.Sprint(f.Size)}},
		})
	}
	for _, im := range d.Images {
		comps = append(comps, Component{
			Type: "container", BOMRef: "image:" + im.Ref, Name: im.Ref, Version: im.Digest.String(),
			Hashes: hashes(im.Digest),
		})
	}
	seed := d.Name + "@" + d.Version
	bom := &BOM{
		BOMFormat: BOMFormat, SpecVersion: SpecVersion, SerialNumber: serial(seed), Version: 1,
		Metadata: &Metadata{
			Tools:     &Tools{Components: []Component{{Type: "application", Name: cmp.Or(o.Tool, "skiff")}}},
			Component: &Component{Type: "application", BOMRef: "package:" + seed, Name: d.Name, Version: d.Version},
		},
		Components: comps,
	}
	return bom.marshal()
}

func hashes(d digest.Digest) []Hash {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return nil
	}
	return []Hash{{Alg: "SHA-256", Content: d.Encoded()}}
}
