package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/skiffhq/skiff/internal/hubapi"
	"github.com/skiffhq/skiff/internal/vuln"
)

// GateVulnerabilities is the name of the vulnerability gate.
const GateVulnerabilities = "vulnerabilities"

// ActionRescan is the audit action of a rescan that changed a package.
const ActionRescan = "rescan"

// runGate runs one added gate.
func runGate(ctx context.Context, g Gate, c *Candidate) GateResult {
	if g.Run != nil {
		r := g.Run(ctx, c)
		r.Name = g.Name
		return r
	}
	if g.Check == nil {
		return GateResult{Name: g.Name, Passed: false, Message: "the gate has no check: fix the hub's configuration"}
	}
	if err := g.Check(ctx, c); err != nil {
		return GateResult{Name: g.Name, Passed: false, Message: err.Error()}
	}
	return GateResult{Name: g.Name, Passed: true}
}

// VulnGateOptions configures [VulnGate].
type VulnGateOptions struct {
	// DBDir is the vulnerability database (skiff vulndb import). It is
	// reopened for every check, so importing a newer database takes
	// effect without restarting the hub (then rescan).
	DBDir string
	// Policy is the threshold and allow-list.
	Policy vuln.Policy
	// Now returns the time allow-list expiries are checked at; time.Now
	// if nil.
	Now func() time.Time
}

// VulnDetails is the Details of the vulnerability gate's result.
type VulnDetails struct {
	// FailOn is the threshold applied.
	FailOn vuln.Severity `json:"failOn"`
	// Blocked are the findings that block the package.
	Blocked []vuln.Finding `json:"blocked,omitempty"`
	// Findings counts all findings, blocking or not.
	Findings int `json:"findings"`
	Packages int `json:"packages"`
	Images   int `json:"images"`
	// Database is the advisory database used.
	Database vuln.Meta `json:"database"`
}

// VulnGate returns the vulnerability gate: it scans the SBOMs the
// candidate carries against the database and applies the policy. A
// blocking finding (or a package without SBOMs, or no database) fails
// the gate; the findings are recorded in the result's details.
func VulnGate(o VulnGateOptions) Gate {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return Gate{Name: GateVulnerabilities, Run: func(ctx context.Context, c *Candidate) GateResult {
		fail := func(err error) GateResult { return GateResult{Passed: false, Message: err.Error()} }
		db, err := vuln.Open(o.DBDir)
		if err != nil {
			return fail(err)
		}
		rep, err := vuln.ScanPackage(ctx, db, c.Archive, c.Description, "")
		if err != nil {
			return fail(err)
		}
		failOn := o.Policy.FailOn
		if failOn == vuln.SeverityUnknown {
			failOn = vuln.DefaultFailOn
		}
		det := VulnDetails{FailOn: failOn, Findings: len(rep.Findings), Packages: rep.Packages, Images: rep.Images, Database: rep.Database}
		gerr := vuln.Evaluate(rep, o.Policy, now())
		var ge *vuln.GateError
		if errors.As(gerr, &ge) {
			det.Blocked = ge.Blocked
		}
		b, _ := json.Marshal(det)
		if gerr != nil {
			return GateResult{Passed: false, Message: gerr.Error(), Details: b}
		}
		return GateResult{Passed: true, Details: b, Message: fmt.Sprintf("%d finding(s) in %d packages of %d images, none at or above %s (advisories imported %s)",
			len(rep.Findings), rep.Packages, rep.Images, failOn, rep.Database.Imported.Format(time.DateOnly))}
	}}
}

// RescanOptions selects the packages [Hub.Rescan] reviews again.
type RescanOptions struct {
	// Owner, Name and Version select one package; All selects every
	// pending, approved and blocked package instead.
	Owner, Name, Version string
	All                  bool
	// Actor is the user asking: a site administrator for All, else an
	// administrator of Owner.
	Actor string
}

// RescanResult is [hubapi.RescanResult].
type RescanResult = hubapi.RescanResult

// Rescan runs the gates of published packages again, typically after a
// vulnerability database update. A pending or approved package that now
// fails becomes blocked (readers can no longer pull it); a blocked one
// that passes becomes pending, and needs approvals again. Every change
// is audited; gate results are updated either way.
func (h *Hub) Rescan(ctx context.Context, o RescanOptions) ([]RescanResult, error) {
	var pkgs []Package
	if o.All {
		u, err := h.store.User(ctx, o.Actor)
		if err != nil {
			return nil, err
		}
		if !u.Admin {
			return nil, fmt.Errorf("%w: rescanning every package needs a site administrator; name one package instead", ErrForbidden)
		}
		all, err := h.store.Packages(ctx, PackageQuery{})
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if published(p.Status) {
				pkgs = append(pkgs, p)
			}
		}
	} else {
		p, err := h.reviewable(ctx, o.Owner, o.Name, o.Version, o.Actor)
		if err != nil {
			return nil, err
		}
		if !published(p.Status) {
			return nil, fmt.Errorf("%w: %s is %s; only pending, approved and blocked packages are rescanned (push it again to resubmit)", ErrConflict, p.Ref(), p.Status)
		}
		pkgs = append(pkgs, *p)
	}
	var out []RescanResult
	for i := range pkgs {
		r, err := h.rescan(ctx, &pkgs[i], o.Actor)
		if err != nil {
			return out, fmt.Errorf("rescanning %s: %w", pkgs[i].Ref(), err)
		}
		out = append(out, *r)
	}
	return out, nil
}

func (h *Hub) rescan(ctx context.Context, p *Package, actor string) (*RescanResult, error) {
	results, _, _, _ := h.runGates(ctx, p)
	passed := true
	for _, r := range results {
		passed = passed && r.Passed
	}
	after := p.Status
	switch {
	case !passed:
		after = StatusBlocked
	case p.Status == StatusBlocked:
		after = StatusPending
	}
	var rec *auditRecord // a rescan that changes nothing is not audited
	if after != p.Status {
		rec = &auditRecord{actor, ActionRescan, p.Ref(), map[string]any{"digest": p.Digest, "before": p.Status, "after": after, "gates": results}}
	}
	// The results and status are recorded only if no review changed the
	// package meanwhile; a package unblocked needs approvals again.
	err := h.store.audited(ctx, rec, func(tx *StoreTx) error {
		if err := tx.SetPackageGates(ctx, p, after, results); err != nil {
			return err
		}
		if after == StatusPending && p.Status == StatusBlocked {
			return tx.DeleteApprovals(ctx, p.ID)
		}
		return nil
	})
	if errors.Is(err, errChanged) {
		return nil, fmt.Errorf("%w: %s was reviewed while it was rescanned: rescan it again", ErrConflict, p.Ref())
	}
	if err != nil {
		return nil, err
	}
	return &RescanResult{Package: p.Ref(), Digest: p.Digest, Before: p.Status, After: after, Gates: results}, nil
}
