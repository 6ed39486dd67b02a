package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/sign"
)

var specsV2 = specs.Versioned{SchemaVersion: 2}

// Candidate is a pushed package under review, as gates see it: the
// package record and an archive rebuilt from the hub's storage (every
// blob verified while it was written).
type Candidate struct {
	Package     *Package
	Archive     *bundle.Archive
	Description *bundle.Description
	// SignedBy are the trusted key IDs that signed it (empty when the
	// hub allows unsigned packages).
	SignedBy []string
}

// Gate is a check a package must pass before review; a non-nil error
// rejects the package and its message is shown to the uploader and
// reviewers. The vulnerability gate is one.
type Gate struct {
	Name  string
	Check func(ctx context.Context, c *Candidate) error
	// Run, if set, is used instead of Check: it returns the whole
	// result, so a passing gate can record a message and details too.
	Run func(ctx context.Context, c *Candidate) GateResult
}

// Built-in gate names.
const (
	GateStructure = "structure"
	GateSignature = "signature"
)

// Submit runs the gates of a quarantined (or rejected) package: the
// structure gate rebuilds and verifies the archive and checks its name
// and version, the signature gate verifies it against the trust
// directory, then Options.Gates run. The package becomes pending (awaiting
// approvals) or rejected. Signatures are the package's referrers of
// signature type. A package already pending or approved is returned as
// it is.
func (h *Hub) Submit(ctx context.Context, owner, name, version, actor string) (*Package, error) {
	p, err := h.store.Package(ctx, owner, name, version)
	if err != nil {
		return nil, err
	}
	switch p.Status {
	case StatusPending, StatusApproved, StatusBlocked:
		return p, nil // already reviewed: pushing the same package again is a no-op (rescan re-runs the gates)
	case StatusRemoved:
		return p, fmt.Errorf("%w: %s was removed: push it again to resubmit it", ErrConflict, p.Ref())
	}
	results, desc, sigs, digests := h.runGates(ctx, p)
	status := StatusPending
	for _, r := range results {
		if !r.Passed {
			status = StatusRejected
		}
	}
	if status == StatusRejected {
		digests = nil
	}
	rec := &auditRecord{actor, ActionSubmit, p.Ref(), map[string]any{"digest": p.Digest, "status": status, "gates": results}}
	switch err := h.store.setGated(ctx, p, p.Status, status, desc, sigs, results, digests, rec); {
	case errors.Is(err, errChanged):
		// Another submission (on this or another replica) finished
		// first; its outcome stands.
		return h.store.Package(ctx, owner, name, version)
	case err != nil:
		return nil, fmt.Errorf("recording the review of %s: %w", p.Ref(), err)
	}
	return h.store.Package(ctx, owner, name, version)
}

// runGates rebuilds the archive into a temporary file and runs every gate.
func (h *Hub) runGates(ctx context.Context, p *Package) (results []GateResult, desc json.RawMessage, sigs []ocispec.Descriptor, digests []string) {
	fail := func(gate string, err error) []GateResult {
		return append(results, GateResult{Name: gate, Passed: false, Message: err.Error()})
	}
	repo, err := h.repository(ctx, p.Repository())
	if err != nil {
		return fail(GateStructure, err), nil, nil, nil
	}
	refs, err := h.store.referrers(ctx, p.Repository(), p.Digest)
	if err != nil {
		return fail(GateStructure, fmt.Errorf("listing signatures: %w", err)), nil, nil, nil
	}
	for _, r := range refs {
		if r.ArtifactType == bundle.ArtifactTypeSignature {
			sigs = append(sigs, ocispec.Descriptor{MediaType: r.MediaType, ArtifactType: r.ArtifactType, Digest: r.Digest, Size: r.Size})
		}
	}
	tmp, err := h.tempDir()
	if err != nil {
		return fail(GateStructure, err), nil, sigs, nil
	}
	// Concurrent reviews of one package each rebuild their own copy.
	work, err := os.MkdirTemp(tmp, "review-*")
	if err != nil {
		return fail(GateStructure, err), nil, sigs, nil
	}
	defer os.RemoveAll(work)
	path := filepath.Join(work, p.Digest[len("sha256:"):]+".skiff")
	if _, err := bundle.Write(ctx, repo, p.Root, path, bundle.WriteOptions{Signatures: sigs}); err != nil {
		return fail(GateStructure, fmt.Errorf("the pushed package is incomplete or corrupt: %w; push it again", err)), nil, sigs, nil
	}
	a, err := bundle.Open(path)
	if err != nil {
		return fail(GateStructure, err), nil, sigs, nil
	}
	defer a.Close()
	d, err := a.Description(ctx)
	if err != nil {
		return fail(GateStructure, err), nil, sigs, nil
	}
	desc, _ = json.Marshal(d)
	if d.Name != p.Name || d.Version != p.Version {
		return fail(GateStructure, fmt.Errorf("the package is %s:%s but was pushed as %s:%s", d.Name, d.Version, p.Name, p.Version)), desc, sigs, nil
	}
	if digests, err = h.closure(ctx, a, append([]ocispec.Descriptor{p.Root}, sigs...), false); err != nil {
		return fail(GateStructure, err), desc, sigs, nil
	}
	results = append(results, GateResult{Name: GateStructure, Passed: true})

	c := &Candidate{Package: p, Archive: a, Description: d}
	if h.o.AllowUnsigned {
		results = append(results, GateResult{Name: GateSignature, Passed: true, Message: "skipped: the hub allows unsigned packages"})
	} else if ids, err := h.verifySignature(ctx, a); err != nil {
		return fail(GateSignature, err), desc, sigs, digests
	} else {
		c.SignedBy = ids
		results = append(results, GateResult{Name: GateSignature, Passed: true, Message: fmt.Sprintf("signed by %v", ids)})
	}
	for _, g := range h.o.Gates {
		results = append(results, runGate(ctx, g, c))
	}
	return results, desc, sigs, digests
}

func (h *Hub) verifySignature(ctx context.Context, a *bundle.Archive) ([]string, error) {
	if h.o.TrustDir == "" {
		return nil, errors.New("the hub has no trust directory: start it with --trust-dir DIR holding the publishers' public keys")
	}
	trust, err := sign.LoadTrust(h.o.TrustDir)
	if err != nil {
		return nil, err
	}
	v, err := a.VerifySignature(ctx, trust)
	if err != nil {
		return nil, err
	}
	return v.KeyIDs, nil
}

// Approve records actor's approval of a pending package; with enough
// approvals it becomes approved. actor needs admin on the owner and must
// not be the uploader.
func (h *Hub) Approve(ctx context.Context, owner, name, version, actor, comment string) (*Package, error) {
	p, err := h.reviewable(ctx, owner, name, version, actor)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusPending {
		return p, fmt.Errorf("%w: %s is %s; only pending packages can be approved", ErrConflict, p.Ref(), p.Status)
	}
	if actor == p.Uploader {
		return p, fmt.Errorf("%w: %s uploaded %s and cannot approve it: another administrator of %s must", ErrForbidden, actor, p.Ref(), owner)
	}
	audit := func(n int) *auditRecord {
		return &auditRecord{actor, ActionApprove, p.Ref(), map[string]any{"digest": p.Digest, "approvals": n, "required": h.o.Approvals, "comment": comment}}
	}
	if _, err := h.store.decide(ctx, p, actor, "approve", comment, h.o.Approvals, audit, StatusPending); err != nil {
		return nil, err
	}
	return h.store.Package(ctx, owner, name, version)
}

// Reject rejects a quarantined or pending package.
func (h *Hub) Reject(ctx context.Context, owner, name, version, actor, comment string) (*Package, error) {
	p, err := h.reviewable(ctx, owner, name, version, actor)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusPending && p.Status != StatusQuarantined {
		return p, fmt.Errorf("%w: %s is %s; only quarantined or pending packages can be rejected", ErrConflict, p.Ref(), p.Status)
	}
	audit := func(int) *auditRecord {
		return &auditRecord{actor, ActionReject, p.Ref(), map[string]any{"digest": p.Digest, "comment": comment}}
	}
	if _, err := h.store.decide(ctx, p, actor, "reject", comment, 0, audit, StatusPending, StatusQuarantined); err != nil {
		return nil, err
	}
	return h.store.Package(ctx, owner, name, version)
}

// Remove withdraws a package: it is no longer readable, its tag is
// deleted from storage, and its version may be pushed again. The
// removal is committed (and audited) first, so readers lose the package
// even when the storage then fails; a tag that cannot be deleted is
// logged, audited (remove.failed) and returned as a *RemoveError, and
// running Remove again deletes it. The blobs stay until garbage
// collection.
func (h *Hub) Remove(ctx context.Context, owner, name, version, actor string) (*Package, error) {
	p, err := h.reviewable(ctx, owner, name, version, actor)
	if err != nil {
		return nil, err
	}
	rec := &auditRecord{actor, ActionRemove, p.Ref(), map[string]any{"digest": p.Digest}}
	if err := h.store.setStatus(ctx, p, StatusRemoved, rec); err != nil {
		return nil, err
	}
	if err := h.untag(ctx, p); err != nil {
		h.logger.Error("hub: deleting the tag of a removed package", "package", p.Ref(), "err", err)
		if aerr := h.store.Audit(ctx, actor, ActionRemoveFailed, p.Ref(), map[string]any{"digest": p.Digest, "error": err.Error()}); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return nil, &RemoveError{Package: p.Ref(), Err: err}
	}
	return h.store.Package(ctx, owner, name, version)
}

// untag deletes the tag of package p from storage; a tag already gone
// is no error.
func (h *Hub) untag(ctx context.Context, p *Package) error {
	repo, err := h.repository(ctx, p.Repository())
	if err != nil {
		return err
	}
	if err := repo.Untag(ctx, p.Version); err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return err
	}
	return nil
}

// RemoveError reports a removal that was made (readers no longer see
// the package, and it is audited) but whose tag could not be deleted
// from storage.
type RemoveError struct {
	Package string
	Err     error
}

func (e *RemoveError) public() string {
	return fmt.Sprintf("%s is removed (readers no longer see it), but deleting its tag from the hub's storage failed: see the hub's log, fix the storage and run skiff hub remove again", e.Package)
}

func (e *RemoveError) Error() string { return e.public() + ": " + e.Err.Error() }
func (e *RemoveError) Unwrap() error { return e.Err }

// reviewable loads a package that actor administers.
func (h *Hub) reviewable(ctx context.Context, owner, name, version, actor string) (*Package, error) {
	l, err := h.store.Level(ctx, actor, owner)
	if err != nil {
		return nil, err
	}
	if l < LevelAdmin {
		return nil, fmt.Errorf("%w: reviewing packages of %s needs admin permission on it", ErrForbidden, owner)
	}
	return h.store.Package(ctx, owner, name, version)
}
