package vuln

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Sentinel errors of [Evaluate]. An expired allow-list entry blocks too:
// its error matches both.
var (
	ErrBlocked      = errors.New("blocked by the vulnerability policy")
	ErrAllowExpired = errors.New("allow-list entry expired")
)

// DefaultFailOn is the threshold of a policy that sets none.
const DefaultFailOn = SeverityCritical

// Policy decides which findings block a package.
type Policy struct {
	// FailOn blocks findings of this severity or higher; zero means
	// [DefaultFailOn], SeverityNone blocks nothing. Findings of unknown
	// severity never block.
	FailOn Severity
	Allow  []AllowEntry
	// Source is the file the policy came from, for messages.
	Source string
}

// AllowEntry accepts a finding until a date.
type AllowEntry struct {
	// ID is the advisory id or one of its aliases (CVE-2024-1234).
	ID string
	// Until is the last moment the entry is valid.
	Until  time.Time
	Reason string
}

type policyFile struct {
	FailOn string `json:"failOn"`
	Allow  []struct {
		ID     string `json:"id"`
		Until  string `json:"until"`
		Reason string `json:"reason"`
	} `json:"allow"`
}

// LoadPolicy reads a policy file:
//
//	failOn: high
//	allow:
//	  - id: CVE-2024-1234
//	    until: 2025-06-30        # through the end of that day, UTC
//	    reason: not reachable, see TICKET-42
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the vulnerability policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Source = path
	return p, nil
}

// ParsePolicy decodes a policy (see [LoadPolicy]).
func ParsePolicy(data []byte) (*Policy, error) {
	var f policyFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("invalid vulnerability policy: %w", err)
	}
	p := &Policy{}
	if f.FailOn != "" {
		s, err := ParseSeverity(f.FailOn)
		if err != nil || s == SeverityUnknown {
			return nil, fmt.Errorf("failOn %q: use critical, high, medium, low or none", f.FailOn)
		}
		p.FailOn = s
	}
	for i, a := range f.Allow {
		if a.ID == "" {
			return nil, fmt.Errorf("allow[%d]: no id: name the advisory, e.g. id: CVE-2024-1234", i)
		}
		if a.Until == "" {
			return nil, fmt.Errorf("allow entry %s: no until date: every exception expires, e.g. until: 2025-06-30", a.ID)
		}
		until, err := parseUntil(a.Until)
		if err != nil {
			return nil, fmt.Errorf("allow entry %s: until %q: use a date (2025-06-30) or an RFC 3339 time", a.ID, a.Until)
		}
		p.Allow = append(p.Allow, AllowEntry{ID: a.ID, Until: until, Reason: a.Reason})
	}
	return p, nil
}

// parseUntil reads a date (valid through its end, UTC) or a time.
func parseUntil(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	return time.Parse(time.RFC3339, s)
}

// GateError lists what blocks a package.
type GateError struct {
	FailOn Severity
	// Blocked are the findings at or above FailOn no valid allow-list
	// entry accepts (those of Expired included).
	Blocked []Finding
	// Expired are the allow-list entries that matched a blocking
	// finding but have expired.
	Expired []ExpiredAllow
	Source  string
}

// ExpiredAllow is an expired allow-list entry and a finding it matched.
type ExpiredAllow struct {
	Entry   AllowEntry
	Finding Finding
}

func (e *GateError) Is(target error) bool {
	return target == ErrBlocked || target == ErrAllowExpired && len(e.Expired) > 0
}

func (e *GateError) Error() string {
	var b strings.Builder
	where := "the policy file (--policy)"
	if e.Source != "" {
		where = e.Source
	}
	fmt.Fprintf(&b, "%s: %d finding(s) at or above %s", ErrBlocked, len(e.Blocked), e.FailOn)
	for _, f := range e.Blocked {
		fix := "no fixed version known"
		if f.FixedVersion != "" {
			fix = "fixed in " + f.FixedVersion
		}
		fmt.Fprintf(&b, "\n  %s (%s) in %s, image %s: %s", f.ID, f.Severity, f.Package, f.Image, fix)
		if f.Platform != "" {
			fmt.Fprintf(&b, " [%s]", f.Platform)
		}
	}
	for _, x := range e.Expired {
		fmt.Fprintf(&b, "\n%s %s expired on %s: renew it in %s or upgrade the package", ErrAllowExpired, x.Entry.ID, x.Entry.Until.Format(time.DateOnly), where)
	}
	fmt.Fprintf(&b, "\nupgrade the affected images and rebuild the package, or accept a finding in %s:\n  allow:\n    - id: %s\n      until: YYYY-MM-DD\n      reason: why it is acceptable",
		where, e.Blocked[0].ID)
	return b.String()
}

// Evaluate applies p to r at time now: nil when nothing blocks, else a
// *GateError matching ErrBlocked (and ErrAllowExpired when an expired
// allow-list entry is the reason).
func Evaluate(r *Report, p Policy, now time.Time) error {
	failOn := p.FailOn
	if failOn == SeverityUnknown {
		failOn = DefaultFailOn
	}
	ge := &GateError{FailOn: failOn, Source: p.Source}
	for _, f := range r.Findings {
		if f.Severity == SeverityUnknown || f.Severity < failOn {
			continue
		}
		allowed := false
		var expired *AllowEntry
		for i, a := range p.Allow {
			if !matchesID(a.ID, f) {
				continue
			}
			if now.After(a.Until) {
				expired = &p.Allow[i]
				continue
			}
			allowed = true
			break
		}
		if allowed {
			continue
		}
		ge.Blocked = append(ge.Blocked, f)
		if expired != nil {
			ge.Expired = append(ge.Expired, ExpiredAllow{Entry: *expired, Finding: f})
		}
	}
	if len(ge.Blocked) == 0 {
		return nil
	}
	return ge
}

func matchesID(id string, f Finding) bool {
	if strings.EqualFold(id, f.ID) {
		return true
	}
	for _, a := range f.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}
