package vuln

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Severity is the severity of a finding, in increasing order.
type Severity int

// Severities. SeverityNone is only a FailOn level: it blocks nothing.
const (
	SeverityUnknown Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
	SeverityNone Severity = 99
)

var severityNames = map[Severity]string{
	SeverityUnknown: "unknown", SeverityLow: "low", SeverityMedium: "medium",
	SeverityHigh: "high", SeverityCritical: "critical", SeverityNone: "none",
}

func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText encodes the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a name (see [ParseSeverity]).
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// ParseSeverity parses critical, high, medium (or moderate), low, none
// or unknown, in any case.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return SeverityCritical, nil
	case "high", "important":
		return SeverityHigh, nil
	case "medium", "moderate":
		return SeverityMedium, nil
	case "low", "negligible", "minor":
		return SeverityLow, nil
	case "none", "off":
		return SeverityNone, nil
	case "unknown", "":
		return SeverityUnknown, nil
	}
	return SeverityUnknown, fmt.Errorf("unknown severity %q: use critical, high, medium, low or none", s)
}

// scoreSeverity maps a CVSS base score to its qualitative rating.
func scoreSeverity(score float64) Severity {
	switch {
	case score >= 9:
		return SeverityCritical
	case score >= 7:
		return SeverityHigh
	case score >= 4:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	}
	return SeverityUnknown
}

// cvssSeverity rates an OSV severity score: a CVSS v3 vector (its base
// score is computed) or a bare number. CVSS v4 vectors are not scored.
func cvssSeverity(score string) Severity {
	score = strings.TrimSpace(score)
	if f, err := strconv.ParseFloat(score, 64); err == nil {
		return scoreSeverity(f)
	}
	if strings.HasPrefix(score, "CVSS:3.") {
		if f, ok := cvss3(score); ok {
			return scoreSeverity(f)
		}
	}
	return SeverityUnknown
}

// cvss3 computes the CVSS v3.x base score of a vector.
func cvss3(vector string) (float64, bool) {
	m := map[string]string{}
	for _, part := range strings.Split(vector, "/")[1:] {
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			return 0, false
		}
		m[k] = v
	}
	w := func(metric string, vals map[string]float64) (float64, bool) {
		f, ok := vals[m[metric]]
		return f, ok
	}
	av, ok1 := w("AV", map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2})
	ac, ok2 := w("AC", map[string]float64{"L": 0.77, "H": 0.44})
	ui, ok3 := w("UI", map[string]float64{"N": 0.85, "R": 0.62})
	cia := map[string]float64{"H": 0.56, "L": 0.22, "N": 0}
	c, ok4 := w("C", cia)
	i, ok5 := w("I", cia)
	a, ok6 := w("A", cia)
	changed := m["S"] == "C"
	prs := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	if changed {
		prs = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	}
	pr, ok7 := w("PR", prs)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || (m["S"] != "U" && m["S"] != "C") {
		return 0, false
	}
	iss := 1 - (1-c)*(1-i)*(1-a)
	impact := 6.42 * iss
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	}
	expl := 8.22 * av * ac * pr * ui
	if impact <= 0 {
		return 0, true
	}
	if changed {
		return roundUp(math.Min(1.08*(impact+expl), 10)), true
	}
	return roundUp(math.Min(impact+expl, 10)), true
}

// roundUp is CVSS 3.1's Roundup: the smallest one-decimal number >= x.
func roundUp(x float64) float64 {
	n := int64(math.Round(x * 100000))
	if n%10000 == 0 {
		return float64(n) / 100000
	}
	return float64(n/10000+1) / 10
}
