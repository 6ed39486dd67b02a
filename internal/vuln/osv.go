package vuln

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrBadAdvisory is returned for an advisory that is not valid OSV JSON.
var ErrBadAdvisory = errors.New("invalid OSV advisory")

// osv is the part of an OSV advisory (https://ossf.github.io/osv-schema/)
// Skiff reads.
type osv struct {
	ID               string          `json:"id"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Summary          string          `json:"summary"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvAffected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Severity          []osvSeverity   `json:"severity"`
	Ranges            []Range         `json:"ranges"`
	Versions          []string        `json:"versions"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
}

// Advisory is the compact form of an OSV advisory kept in the database.
type Advisory struct {
	ID       string     `json:"id"`
	Aliases  []string   `json:"aliases,omitempty"`
	Summary  string     `json:"summary,omitempty"`
	Severity Severity   `json:"severity"`
	Affected []Affected `json:"affected"`
}

// Affected is one affected package of an advisory.
type Affected struct {
	// Ecosystem is the OSV ecosystem with its release ("Debian:12").
	Ecosystem string   `json:"ecosystem"`
	Name      string   `json:"name"`
	Ranges    []Range  `json:"ranges,omitempty"`
	Versions  []string `json:"versions,omitempty"`
	// Severity overrides the advisory's for this package when set.
	Severity Severity `json:"severity,omitempty"`
}

// Range is an OSV range: events in version order.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// ecosystems are the OSV ecosystems matched against SBOM purls.
var ecosystems = map[string]bool{"npm": true, "Go": true, "PyPI": true, "Debian": true, "Alpine": true}

// baseEcosystem strips the release: "Debian:12" -> "Debian".
func baseEcosystem(e string) string {
	b, _, _ := strings.Cut(e, ":")
	return b
}

// ParseAdvisory decodes one OSV advisory and reduces it to what the
// database keeps. withdrawn reports an advisory that was withdrawn.
func ParseAdvisory(data []byte) (a *Advisory, withdrawn bool, err error) {
	var o osv
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrBadAdvisory, err)
	}
	if o.ID == "" {
		return nil, false, fmt.Errorf("%w: no id", ErrBadAdvisory)
	}
	a = &Advisory{ID: o.ID, Aliases: o.Aliases, Summary: truncate(o.Summary, 300)}
	a.Severity = max(specificSeverity(o.DatabaseSpecific), severityOf(o.Severity))
	for _, af := range o.Affected {
		if af.Package.Name == "" || af.Package.Ecosystem == "" {
			continue
		}
		r := Affected{Ecosystem: af.Package.Ecosystem, Name: af.Package.Name, Versions: af.Versions}
		r.Severity = max(severityOf(af.Severity), specificSeverity(af.DatabaseSpecific), specificSeverity(af.EcosystemSpecific))
		for _, rg := range af.Ranges {
			if rg.Type == "SEMVER" || rg.Type == "ECOSYSTEM" {
				r.Ranges = append(r.Ranges, rg)
			}
		}
		if len(r.Ranges) == 0 && len(r.Versions) == 0 {
			continue
		}
		a.Affected = append(a.Affected, r)
	}
	return a, o.Withdrawn != "", nil
}

func severityOf(ss []osvSeverity) Severity {
	s := SeverityUnknown
	for _, v := range ss {
		s = max(s, cvssSeverity(v.Score))
	}
	return s
}

// specificSeverity reads {"severity": "HIGH"} (GitHub advisories and
// others) from a database_specific or ecosystem_specific object.
func specificSeverity(raw json.RawMessage) Severity {
	if len(raw) == 0 {
		return SeverityUnknown
	}
	var v struct {
		Severity json.RawMessage `json:"severity"`
	}
	if json.Unmarshal(raw, &v) != nil || len(v.Severity) == 0 {
		return SeverityUnknown
	}
	var s string
	if json.Unmarshal(v.Severity, &s) != nil {
		return SeverityUnknown
	}
	sev, err := ParseSeverity(s)
	if err != nil || sev == SeverityNone {
		return cvssSeverity(s)
	}
	return sev
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// affects reports whether version is affected by af and the fixed
// version of the range that affects it ("" when none is known).
func (af *Affected) affects(version string) (bool, string) {
	compare := compareFor(af.Ecosystem)
	for _, v := range af.Versions {
		if compare(v, version) == 0 {
			return true, af.fixedAfter(version, compare)
		}
	}
	for _, r := range af.Ranges {
		if ok, fixed := r.affects(version, compare); ok {
			return true, fixed
		}
	}
	return false, ""
}

func (af *Affected) fixedAfter(version string, compare func(a, b string) int) string {
	for _, r := range af.Ranges {
		if f := r.fixedAfter(version, compare); f != "" {
			return f
		}
	}
	return ""
}

// affects evaluates an OSV range as the schema describes: sort the
// events, then walk them; "introduced" at or below the version turns
// affected on, "fixed" at or below turns it off, "last_affected" below
// turns it off.
func (r Range) affects(version string, compare func(a, b string) int) (bool, string) {
	if r.Type == "SEMVER" {
		compare = CompareSemver
	}
	affected := false
	for _, e := range sortedEvents(r.Events, compare) {
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" || compare(version, e.Introduced) >= 0 {
				affected = true
			}
		case e.Fixed != "":
			if compare(version, e.Fixed) >= 0 {
				affected = false
			}
		case e.LastAffected != "":
			if compare(version, e.LastAffected) > 0 {
				affected = false
			}
		case e.Limit != "":
			if compare(version, e.Limit) >= 0 {
				affected = false
			}
		}
	}
	if !affected {
		return false, ""
	}
	return true, r.fixedAfter(version, compare)
}

// fixedAfter is the lowest fixed version above version.
func (r Range) fixedAfter(version string, compare func(a, b string) int) string {
	if r.Type == "SEMVER" {
		compare = CompareSemver
	}
	best := ""
	for _, e := range r.Events {
		if e.Fixed != "" && compare(e.Fixed, version) > 0 && (best == "" || compare(e.Fixed, best) < 0) {
			best = e.Fixed
		}
	}
	return best
}

func sortedEvents(ev []Event, compare func(a, b string) int) []Event {
	out := make([]Event, len(ev))
	copy(out, ev)
	val := func(e Event) string {
		switch {
		case e.Introduced != "":
			return e.Introduced
		case e.Fixed != "":
			return e.Fixed
		case e.LastAffected != "":
			return e.LastAffected
		}
		return e.Limit
	}
	// Insertion sort: ranges hold a handful of events, and the
	// comparison need not be a strict weak order on junk input.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0; j-- {
			a, b := out[j-1], out[j]
			c := 0
			switch {
			case a.Introduced == "0" && b.Introduced != "0":
				c = -1
			case b.Introduced == "0" && a.Introduced != "0":
				c = 1
			default:
				c = compare(val(a), val(b))
			}
			if c <= 0 {
				break
			}
			out[j-1], out[j] = b, a
		}
	}
	return out
}
