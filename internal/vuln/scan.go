package vuln

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffhq/skiff/internal/sbom"
)

// ErrBadSBOM is returned for an SBOM that cannot be read.
var ErrBadSBOM = errors.New("unreadable SBOM")

// Finding is one vulnerable package in one image.
type Finding struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// Package is the purl of the installed package.
	Package          string   `json:"package"`
	Name             string   `json:"name"`
	InstalledVersion string   `json:"installedVersion"`
	FixedVersion     string   `json:"fixedVersion,omitempty"`
	Severity         Severity `json:"severity"`
	Image            string   `json:"image"`
	Platform         string   `json:"platform,omitempty"`
	// Location is the file the package was found in.
	Location string `json:"location,omitempty"`
}

// Report is the result of a scan.
type Report struct {
	// Findings are sorted by severity (highest first), id, package and
	// image.
	Findings []Finding `json:"findings"`
	// Packages is the number of components with a purl scanned.
	Packages int `json:"packages"`
	// Images is the number of SBOMs scanned.
	Images int `json:"images"`
	// Database describes the advisories used.
	Database Meta `json:"database"`
}

// target is an SBOM component to match.
type target struct {
	ecosystem string // OSV base ecosystem
	release   string // "12" for Debian 12, "3.19" for Alpine 3.19
	names     []string
	purl      string
	name      string
	version   string
	location  string
	doc       *sbom.Document
}

// Scan matches the components of the SBOMs against the database. A
// document that is not a CycloneDX SBOM is an error naming its image.
func Scan(ctx context.Context, db *DB, docs []sbom.Document) (*Report, error) {
	rep := &Report{Database: db.Meta, Images: len(docs)}
	byEco := map[string][]*target{}
	names := map[string]map[string]bool{}
	for i := range docs {
		d := &docs[i]
		bom, err := sbom.Parse(d.Data)
		if err != nil {
			return nil, fmt.Errorf("%w of %s: %w: rebuild the package to regenerate it", ErrBadSBOM, d.Name(), err)
		}
		for _, c := range bom.Components {
			if c.PURL == "" {
				continue
			}
			rep.Packages++
			t, err := newTarget(c)
			if err != nil {
				return nil, fmt.Errorf("%w of %s: component %q: %w", ErrBadSBOM, d.Name(), c.Name, err)
			}
			if t == nil {
				continue
			}
			t.doc = d
			byEco[t.ecosystem] = append(byEco[t.ecosystem], t)
			if names[t.ecosystem] == nil {
				names[t.ecosystem] = map[string]bool{}
			}
			for _, n := range t.names {
				names[t.ecosystem][n] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, eco := range slicesSortedKeys(byEco) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		byName := map[string][]*Advisory{}
		err := db.advisories(eco, names[eco], func(a *Advisory) {
			for _, af := range a.Affected {
				k := packageKey(eco, af.Name)
				if names[eco][k] && !slices.Contains(byName[k], a) {
					byName[k] = append(byName[k], a)
				}
			}
		})
		if err != nil {
			return nil, err
		}
		for _, t := range byEco[eco] {
			for _, n := range t.names {
				for _, a := range byName[n] {
					for i := range a.Affected {
						af := &a.Affected[i]
						if packageKey(eco, af.Name) != n || !releaseMatches(af.Ecosystem, t.release) {
							continue
						}
						ok, fixed := af.affects(t.version)
						if !ok {
							continue
						}
						key := a.ID + "|" + t.purl + "|" + t.doc.Image + "|" + t.doc.Platform + "|" + t.location
						if seen[key] {
							continue
						}
						seen[key] = true
						rep.Findings = append(rep.Findings, Finding{
							ID: a.ID, Aliases: a.Aliases, Summary: a.Summary, Package: t.purl, Name: t.name,
							InstalledVersion: t.version, FixedVersion: fixed, Severity: cmp.Or(af.Severity, a.Severity),
							Image: t.doc.Image, Platform: t.doc.Platform, Location: t.location,
						})
					}
				}
			}
		}
	}
	slices.SortFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Package, b.Package),
			cmp.Compare(a.Image, b.Image), cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.Location, b.Location))
	})
	return rep, nil
}

func slicesSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// newTarget maps a component's purl to an OSV ecosystem and package
// names; nil for purl types Skiff does not scan.
func newTarget(c sbom.Component) (*target, error) {
	p, err := sbom.ParsePURL(c.PURL)
	if err != nil {
		return nil, err
	}
	if p.Version == "" {
		return nil, nil
	}
	t := &target{purl: c.PURL, name: c.Name, version: p.Version, location: c.Property(sbom.PropLocation)}
	q := p.Qualifiers
	switch p.Type {
	case "npm":
		t.ecosystem = "npm"
		t.names = []string{joinName(p.Namespace, p.Name)}
	case "golang":
		t.ecosystem = "Go"
		t.names = []string{joinName(p.Namespace, p.Name)}
	case "pypi":
		t.ecosystem = "PyPI"
		t.names = []string{sbom.NormalizePyPI(p.Name)}
	case "deb":
		if p.Namespace != "debian" {
			return nil, nil
		}
		t.ecosystem = "Debian"
		_, t.release, _ = strings.Cut(q["distro"], "-")
		t.names = upstream(p.Name, q["upstream"])
	case "apk":
		if p.Namespace != "alpine" {
			return nil, nil
		}
		t.ecosystem = "Alpine"
		_, t.release, _ = strings.Cut(q["distro"], "-")
		t.names = upstream(p.Name, q["upstream"])
	default:
		return nil, nil
	}
	return t, nil
}

func joinName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// upstream returns the binary package name and its source package name,
// which Debian and Alpine advisories use.
func upstream(name, src string) []string {
	src, _, _ = strings.Cut(src, "@")
	out := []string{strings.ToLower(name)}
	if src != "" && !strings.EqualFold(src, name) {
		out = append(out, strings.ToLower(src))
	}
	return out
}

// releaseMatches compares the release of an OSV ecosystem ("Debian:12",
// "Alpine:v3.19") with the distro release of a package ("12",
// "3.19.1"). Either side unknown matches.
func releaseMatches(ecosystem, release string) bool {
	_, want, ok := strings.Cut(ecosystem, ":")
	if !ok || want == "" || release == "" {
		return true
	}
	want = strings.TrimPrefix(want, "v")
	if want == release {
		return true
	}
	// Alpine:v3.19 covers 3.19.1; Debian:12 covers 12.5.
	return strings.HasPrefix(release, want+".")
}
