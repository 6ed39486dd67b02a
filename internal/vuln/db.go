// Package vuln is Skiff's offline vulnerability gate: it imports OSV
// advisories into a local database, matches them against the package
// URLs of CycloneDX SBOMs (npm, Go and PyPI semantic versions, Debian
// versions in dpkg order, Alpine versions in apk order) and evaluates a
// policy (a severity threshold and an allow-list with expiry dates).
package vuln

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/sbom"
)

// ErrNoDB is returned when the database directory holds no import.
var ErrNoDB = errors.New("no vulnerability database")

// maxAdvisorySize bounds one advisory file.
const maxAdvisorySize = 16 << 20

const (
	metaFile   = "meta.json"
	formatV1   = 1
	genPrefix  = "gen-"
	lineSuffix = ".jsonl"
)

// DefaultDir is $XDG_DATA_HOME/skiff/vulndb (~/.local/share/skiff/vulndb).
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "skiff", "vulndb"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the vulnerability database: %w: pass --vuln-db DIR", err)
	}
	return filepath.Join(home, ".local", "share", "skiff", "vulndb"), nil
}

// Meta describes an import; it is the database's meta.json.
type Meta struct {
	Format       int            `json:"format"`
	Generation   string         `json:"generation"`
	Imported     time.Time      `json:"imported"`
	Source       string         `json:"source"`
	SourceDigest digest.Digest  `json:"sourceDigest"`
	Advisories   int            `json:"advisories"`
	Ecosystems   map[string]int `json:"ecosystems"`
	// Skipped counts advisories of other ecosystems and withdrawn ones.
	Skipped int `json:"skipped"`
}

// ImportResult reports an import.
type ImportResult = Meta

// DB is an opened database.
type DB struct {
	Dir  string
	Meta Meta
}

// Open opens the database in dir.
func Open(dir string) (*DB, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: import OSV advisories with `skiff vulndb import all.zip` (download https://osv-vulnerabilities.storage.googleapis.com/all.zip on the connected side)", ErrNoDB, dir)
	}
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil || m.Format != formatV1 || !strings.HasPrefix(m.Generation, genPrefix) {
		return nil, fmt.Errorf("vulnerability database %s is damaged or from another version: import it again", dir)
	}
	return &DB{Dir: dir, Meta: m}, nil
}

// Exists reports whether dir holds an imported database.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, metaFile))
	return err == nil
}

// Import reads OSV advisories from src (an OSV all.zip or ecosystem zip,
// a directory of OSV JSON files, or one .json file holding an advisory
// or a list of them) and replaces the database in dbDir atomically:
// readers see the old or the new import, never a mix. Advisories of
// ecosystems Skiff does not scan, and withdrawn ones, are skipped.
func Import(ctx context.Context, dbDir, src string) (*ImportResult, error) {
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("importing advisories: %w", err)
	}
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the vulnerability database: %w", err)
	}
	gen, err := os.MkdirTemp(dbDir, genPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating the vulnerability database: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(gen)
		}
	}()
	w := &genWriter{dir: gen, files: map[string]*genFile{}}
	defer w.close()
	abs, _ := filepath.Abs(src)
	m := &Meta{Format: formatV1, Generation: filepath.Base(gen), Source: abs, Ecosystems: map[string]int{}}
	add := func(name string, data []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.addFile(name, data, m)
	}
	switch {
	case st.IsDir():
		m.SourceDigest, err = importDir(src, add)
	case strings.HasSuffix(strings.ToLower(src), ".zip"):
		m.SourceDigest, err = importZip(src, add)
	default:
		m.SourceDigest, err = importFile(src, add)
	}
	if err != nil {
		return nil, err
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	m.Imported = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dbDir, metaFile), b, 0o644); err != nil {
		return nil, err
	}
	ok = true
	// Drop older generations; a scan still reading one fails cleanly
	// and can be run again.
	entries, _ := os.ReadDir(dbDir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), genPrefix) && e.Name() != m.Generation {
			os.RemoveAll(filepath.Join(dbDir, e.Name()))
		}
	}
	return m, nil
}

func importFile(path string, add func(string, []byte) error) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return "", err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return "", fmt.Errorf("%s: %w: %w", path, ErrBadAdvisory, err)
		}
		for i, raw := range list {
			if err := add(fmt.Sprintf("%s[%d]", path, i), raw); err != nil {
				return "", err
			}
		}
	} else if err := add(path, data); err != nil {
		return "", err
	}
	return digest.FromBytes(data), nil
}

func importDir(dir string, add func(string, []byte) error) (digest.Digest, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(strings.ToLower(p), ".json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	h := sha256.New()
	for _, p := range files {
		data, err := readLimited(p)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %s\n", digest.FromBytes(data).Encoded(), filepath.ToSlash(rel))
		if err := add(p, data); err != nil {
			return "", err
		}
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAdvisorySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxAdvisorySize {
		return nil, fmt.Errorf("%s: larger than %d bytes: not an OSV advisory", p, maxAdvisorySize)
	}
	return data, nil
}

func importZip(path string, add func(string, []byte) error) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return "", fmt.Errorf("%s is not a zip archive (%w): download OSV's all.zip again", path, err)
	}
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(zf.Name), ".json") {
			continue
		}
		if zf.UncompressedSize64 > maxAdvisorySize {
			return "", fmt.Errorf("%s: %s is larger than %d bytes: not an OSV advisory", path, zf.Name, maxAdvisorySize)
		}
		rc, err := zf.Open()
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxAdvisorySize+1))
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
		if err := add(path+":"+zf.Name, data); err != nil {
			return "", err
		}
	}
	return dg.Digest(), nil
}

// genWriter writes one JSON-lines file per ecosystem into a generation.
type genWriter struct {
	dir   string
	files map[string]*genFile
}

type genFile struct {
	f *os.File
	w *bufio.Writer
}

func (g *genWriter) addFile(name string, data []byte, m *Meta) error {
	a, withdrawn, err := ParseAdvisory(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if withdrawn {
		m.Skipped++
		return nil
	}
	// One line per ecosystem the advisory affects, holding only that
	// ecosystem's packages.
	byEco := map[string][]Affected{}
	for _, af := range a.Affected {
		if e := baseEcosystem(af.Ecosystem); ecosystems[e] {
			byEco[e] = append(byEco[e], af)
		}
	}
	if len(byEco) == 0 {
		m.Skipped++
		return nil
	}
	for _, e := range slices.Sorted(maps.Keys(byEco)) {
		part := *a
		part.Affected = byEco[e]
		line, err := json.Marshal(&part)
		if err != nil {
			return err
		}
		gf := g.files[e]
		if gf == nil {
			f, err := os.Create(filepath.Join(g.dir, e+lineSuffix))
			if err != nil {
				return err
			}
			gf = &genFile{f: f, w: bufio.NewWriterSize(f, 256<<10)}
			g.files[e] = gf
		}
		gf.w.Write(line)
		if err := gf.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("writing the vulnerability database: %w", err)
		}
		m.Ecosystems[e]++
	}
	m.Advisories++
	return nil
}

func (g *genWriter) finish() error {
	for _, gf := range g.files {
		if err := gf.w.Flush(); err != nil {
			return err
		}
		if err := gf.f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

func (g *genWriter) close() {
	for _, gf := range g.files {
		gf.f.Close()
	}
}

// advisories streams the advisories of one ecosystem, calling fn for
// each whose affected packages include a name in names.
func (db *DB) advisories(ecosystem string, names map[string]bool, fn func(*Advisory)) error {
	f, err := os.Open(filepath.Join(db.Dir, db.Meta.Generation, ecosystem+lineSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the vulnerability database: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256<<10), maxAdvisorySize*2)
	for sc.Scan() {
		var a Advisory
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return fmt.Errorf("vulnerability database %s is damaged (%w): import it again", db.Dir, err)
		}
		if slices.ContainsFunc(a.Affected, func(af Affected) bool { return names[packageKey(ecosystem, af.Name)] }) {
			fn(&a)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the vulnerability database: %w", err)
	}
	return nil
}

// packageKey normalizes a package name for matching.
func packageKey(ecosystem, name string) string {
	switch ecosystem {
	case "PyPI":
		return sbom.NormalizePyPI(name)
	case "Go", "npm":
		return name
	}
	return strings.ToLower(name)
}
