package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// Package states. A pushed package is quarantined until its gates run;
// then rejected (a gate failed) or pending until enough approvals make
// it approved. Only approved packages are readable by readers.
const (
	StatusQuarantined = hubapi.StatusQuarantined
	StatusPending     = hubapi.StatusPending
	StatusApproved    = hubapi.StatusApproved
	StatusRejected    = hubapi.StatusRejected
	StatusRemoved     = hubapi.StatusRemoved
	StatusBlocked     = hubapi.StatusBlocked
)

// GateResult is [hubapi.GateResult].
type GateResult = hubapi.GateResult

// Approval is [hubapi.Approval].
type Approval = hubapi.Approval

// Package is [hubapi.Package].
type Package = hubapi.Package

const packageCols = `id, owner, name, version, digest, root, description, signatures, gates, status, uploader, created, updated`

func scanPackage(sc interface{ Scan(...any) error }) (*Package, error) {
	var p Package
	var root, desc, sigs, gates string
	var created, updated int64
	if err := sc.Scan(&p.ID, &p.Owner, &p.Name, &p.Version, &p.Digest, &root, &desc, &sigs, &gates, &p.Status, &p.Uploader, &created, &updated); err != nil {
		return nil, err
	}
	p.Created, p.Updated = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	if err := json.Unmarshal([]byte(root), &p.Root); err != nil {
		return nil, fmt.Errorf("decoding the root of %s: %w", p.Ref(), err)
	}
	if desc != "" {
		p.Description = json.RawMessage(desc)
	}
	if sigs != "" {
		json.Unmarshal([]byte(sigs), &p.Signatures)
	}
	if gates != "" {
		json.Unmarshal([]byte(gates), &p.Gates)
	}
	return &p, nil
}

// RecordPush records that uploader pushed the package root root as
// owner/name:version, quarantined, and appends the push to the audit log
// in the same transaction. A version is bound to one root digest: while
// it is quarantined, pending, approved or blocked with another root, a
// push is refused (ErrConflict); a rejected or removed one is replaced.
// Pushes are serialized (the audit lock), across replicas too, so of
// two concurrent pushes of one version with different roots one wins.
func (s *Store) RecordPush(ctx context.Context, owner, name, version string, root ocispec.Descriptor, uploader string) (*Package, error) {
	p, _, err := s.recordPush(ctx, owner, name, version, root, uploader, nil)
	return p, err
}

// recordPush is RecordPush with audit details beyond the digest; it
// also reports whether it created the record (false: the same root was
// recorded already).
func (s *Store) recordPush(ctx context.Context, owner, name, version string, root ocispec.Descriptor, uploader string, details map[string]any) (*Package, bool, error) {
	rootJSON, err := json.Marshal(root)
	if err != nil {
		return nil, false, err
	}
	d := map[string]any{"digest": root.Digest.String()}
	for k, v := range details {
		d[k] = v
	}
	created := false
	rec := &auditRecord{uploader, ActionPush, owner + "/" + name + ":" + version, d}
	now := s.now().Unix()
	err = s.audited(ctx, rec, func(tx *StoreTx) error {
		old, err := scanPackage(tx.row(ctx, `SELECT `+packageCols+` FROM packages WHERE owner = ? AND name = ? AND version = ?`, owner, name, version))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case old.Digest == root.Digest.String() && bound(old.Status):
			return nil // the same push again
		case bound(old.Status):
			return versionTaken(old)
		default:
			for _, q := range []string{`DELETE FROM package_digests WHERE package_id = ?`, `DELETE FROM approvals WHERE package_id = ?`, `DELETE FROM packages WHERE id = ?`} {
				if err := tx.exec(ctx, q, old.ID); err != nil {
					return err
				}
			}
		}
		created = true
		return tx.exec(ctx, `INSERT INTO packages (owner, name, version, digest, root, status, uploader, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			owner, name, version, root.Digest.String(), string(rootJSON), StatusQuarantined, uploader, now, now)
	})
	if err != nil {
		return nil, false, err
	}
	p, err := s.Package(ctx, owner, name, version)
	return p, created, err
}

// releasePush forgets the record recordPush created for a push whose
// manifest the registry then refused, unless it changed meanwhile, and
// audits that.
func (s *Store) releasePush(ctx context.Context, p *Package, uploader string) error {
	rec := &auditRecord{uploader, ActionPushFailed, p.Ref(), map[string]any{"digest": p.Digest}}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		return tx.changeRow(ctx, `DELETE FROM packages WHERE id = ? AND status = ? AND digest = ?`, p.ID, StatusQuarantined, p.Digest)
	})
}

// published reports whether a version in this state is immutable.
func published(status string) bool {
	return status == StatusPending || status == StatusApproved || status == StatusBlocked
}

// bound reports whether a version in this state is bound to its root
// digest: published, or quarantined (pushed, not yet reviewed).
func bound(status string) bool { return status == StatusQuarantined || published(status) }

// versionTaken is the error for a push of p's version with another root.
func versionTaken(p *Package) error {
	if p.Status == StatusQuarantined {
		return fmt.Errorf("%w: %s was pushed already as %s and awaits review (quarantined): versions are immutable; publish a new version, or have an administrator reject it (`skiff hub reject %s`) first", ErrConflict, p.Ref(), p.Digest, p.Ref())
	}
	return fmt.Errorf("%w: %s is already published as %s (%s): versions are immutable; publish a new version", ErrConflict, p.Ref(), p.Digest, p.Status)
}

// CanPush reports whether owner/name:version may be (re)pushed with root
// digest d: ErrConflict when the version is bound to another root.
func (s *Store) CanPush(ctx context.Context, owner, name, version, d string) error {
	p, err := s.Package(ctx, owner, name, version)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.Digest != d && bound(p.Status) {
		return versionTaken(p)
	}
	return nil
}

// Package returns a package with its approvals.
func (s *Store) Package(ctx context.Context, owner, name, version string) (*Package, error) {
	p, err := scanPackage(s.row(ctx, s.db, `SELECT `+packageCols+` FROM packages WHERE owner = ? AND name = ? AND version = ?`, owner, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("package %s/%s:%s: %w", owner, name, version, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, s.db, `SELECT user_name, decision, comment, time FROM approvals WHERE package_id = ? ORDER BY time, user_name`, p.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Approval
		var t int64
		if err := rows.Scan(&a.User, &a.Decision, &a.Comment, &t); err != nil {
			return nil, err
		}
		a.Time = time.Unix(t, 0).UTC()
		p.Approvals = append(p.Approvals, a)
	}
	return p, rows.Err()
}

// PackageQuery selects packages.
type PackageQuery struct {
	// Query matches a substring of OWNER/NAME or of the description.
	Query string
	// Status selects one state; "" selects all.
	Status string
	// Owner selects one owner; "" selects all.
	Owner string
}

// Packages lists packages by owner, name and creation.
func (s *Store) Packages(ctx context.Context, q PackageQuery) ([]Package, error) {
	return s.packagesOn(ctx, s.db, q)
}

// packagesOn is Packages read through db (the pool or a transaction).
func (s *Store) packagesOn(ctx context.Context, db querier, q PackageQuery) ([]Package, error) {
	like := "%" + strings.ToLower(q.Query) + "%"
	rows, err := s.rows(ctx, db, `SELECT `+packageCols+` FROM packages
		WHERE (? = '' OR status = ?) AND (? = '' OR owner = ?)
		AND (LOWER(owner || '/' || name) LIKE ? OR LOWER(description) LIKE ?)
		ORDER BY owner, name, created, version`, q.Status, q.Status, q.Owner, q.Owner, like, like)
	return scanPackages(rows, err)
}

// PackagesByDigest lists the packages of repository owner/name whose
// root is d.
func (s *Store) packagesByDigest(ctx context.Context, owner, name, d string) ([]Package, error) {
	rows, err := s.rows(ctx, s.db, `SELECT `+packageCols+` FROM packages WHERE owner = ? AND name = ? AND digest = ?`, owner, name, d)
	return scanPackages(rows, err)
}

// scanPackages reads the packages of a query's rows (and its error),
// closing them.
func scanPackages(rows *sql.Rows, err error) ([]Package, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// livePackages lists the quarantined, pending, approved and blocked
// packages of repository owner/name: those whose content is immutable.
func (s *Store) livePackages(ctx context.Context, owner, name string) ([]Package, error) {
	rows, err := s.rows(ctx, s.db, `SELECT `+packageCols+` FROM packages WHERE owner = ? AND name = ? AND status IN (?, ?, ?, ?)`,
		owner, name, StatusQuarantined, StatusPending, StatusApproved, StatusBlocked)
	return scanPackages(rows, err)
}

// approvedDigest reports whether d is part of an approved package of
// repository owner/name.
func (s *Store) approvedDigest(ctx context.Context, owner, name, d string) (bool, error) {
	var n int
	err := s.row(ctx, s.db, `SELECT COUNT(*) FROM package_digests pd JOIN packages p ON p.id = pd.package_id
		WHERE p.owner = ? AND p.name = ? AND p.status = ? AND pd.digest = ?`, owner, name, StatusApproved, d).Scan(&n)
	return n > 0, err
}

// errChanged reports that a package's status changed (on another
// request or replica) since it was read.
var errChanged = errors.New("the package changed meanwhile")

// setGated stores the gates' findings and the package's new status,
// provided the package is still in state from (errChanged otherwise:
// another review finished first), and appends rec in the same
// transaction.
func (s *Store) setGated(ctx context.Context, p *Package, from, status string, desc json.RawMessage, sigs []ocispec.Descriptor, gates []GateResult, digests []string, rec *auditRecord) error {
	sigJSON, _ := json.Marshal(sigs)
	gateJSON, _ := json.Marshal(gates)
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := tx.changeRow(ctx, `UPDATE packages SET status = ?, description = ?, signatures = ?, gates = ?, updated = ? WHERE id = ? AND status = ?`,
			status, string(desc), string(sigJSON), string(gateJSON), s.now().Unix(), p.ID, from); err != nil {
			return err
		}
		if err := tx.exec(ctx, `DELETE FROM package_digests WHERE package_id = ?`, p.ID); err != nil {
			return err
		}
		for _, d := range digests {
			if err := tx.exec(ctx, `INSERT INTO package_digests (package_id, digest) VALUES (?, ?)`, p.ID, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// setStatus changes a package's status and appends rec in the same
// transaction.
func (s *Store) setStatus(ctx context.Context, p *Package, status string, rec *auditRecord) error {
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		return tx.exec(ctx, `UPDATE packages SET status = ?, updated = ? WHERE id = ?`, status, s.now().Unix(), p.ID)
	})
}

// lockPackage reads package id's status inside tx, locking its row
// against concurrent reviews until tx ends (PostgreSQL: FOR UPDATE;
// SQLite transactions are exclusive already).
func (s *Store) lockPackage(ctx context.Context, tx *StoreTx, id int64) (string, error) {
	q := `SELECT status FROM packages WHERE id = ?`
	if s.pg {
		q += ` FOR UPDATE`
	}
	var status string
	err := tx.row(ctx, q, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errChanged
	}
	return status, err
}

// decide records user's decision on package p in one transaction that
// holds the package's row: its status must be one of allowed
// (ErrConflict otherwise). An approval counts the approvals by users
// other than the uploader and makes the package approved once there are
// required of them; a rejection rejects it. It returns that count (0 for
// a rejection). Two reviewers deciding at once, on any replicas, are
// applied one after the other. The entry audit returns (given that
// count) is appended in the same transaction.
func (s *Store) decide(ctx context.Context, p *Package, user, decision, comment string, required int, audit func(approvals int) *auditRecord, allowed ...string) (int, error) {
	n := 0
	rec := audit(0)
	rec.details = func() any { return audit(n).details }
	err := s.audited(ctx, rec, func(tx *StoreTx) error {
		status, err := s.lockPackage(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		ok := false
		for _, a := range allowed {
			ok = ok || status == a
		}
		if !ok {
			return fmt.Errorf("%w: %s is %s; only %s packages can be %sed", ErrConflict, p.Ref(), status, strings.Join(allowed, " or "), strings.TrimSuffix(decision, "e"))
		}
		if err := tx.exec(ctx, `DELETE FROM approvals WHERE package_id = ? AND user_name = ?`, p.ID, user); err != nil {
			return err
		}
		if err := tx.exec(ctx, `INSERT INTO approvals (package_id, user_name, decision, comment, time) VALUES (?, ?, ?, ?, ?)`,
			p.ID, user, decision, comment, s.now().Unix()); err != nil {
			return err
		}
		next := StatusRejected
		if decision == "approve" {
			if n, err = s.countApprovals(ctx, tx, p); err != nil {
				return err
			}
			if n < required {
				return nil
			}
			next = StatusApproved
		}
		return tx.exec(ctx, `UPDATE packages SET status = ?, updated = ? WHERE id = ?`, next, s.now().Unix(), p.ID)
	})
	if errors.Is(err, errChanged) {
		err = fmt.Errorf("%w: %s was replaced meanwhile; look at it again", ErrConflict, p.Ref())
	}
	return n, err
}

// countApprovals counts, inside tx, the approvals of package p that
// count: by users other than the uploader who still hold admin on its
// owner (an approval by someone who lost that right since does not).
func (s *Store) countApprovals(ctx context.Context, tx *StoreTx, p *Package) (int, error) {
	rows, err := tx.rows(ctx, `SELECT user_name FROM approvals WHERE package_id = ? AND decision = 'approve' AND user_name <> ?`, p.ID, p.Uploader)
	if err != nil {
		return 0, err
	}
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return 0, err
		}
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		l, err := s.levelOn(ctx, tx.stx, u, p.Owner)
		if errors.Is(err, ErrNotFound) {
			continue // the user was removed
		}
		if err != nil {
			return 0, err
		}
		if l >= LevelAdmin {
			n++
		}
	}
	return n, nil
}

// addReferrer records that manifest desc in repo has subject subject.
func (s *Store) addReferrer(ctx context.Context, repo, subject string, desc ocispec.Descriptor) error {
	b, err := json.Marshal(desc)
	if err != nil {
		return err
	}
	return s.Tx(ctx, func(tx *StoreTx) error {
		if err := tx.exec(ctx, `DELETE FROM referrers WHERE repo = ? AND subject = ? AND digest = ?`, repo, subject, desc.Digest.String()); err != nil {
			return err
		}
		return tx.exec(ctx, `INSERT INTO referrers (repo, subject, digest, descriptor) VALUES (?, ?, ?, ?)`, repo, subject, desc.Digest.String(), string(b))
	})
}

// deleteReferrer forgets manifest d of repo as a referrer.
func (s *Store) deleteReferrer(ctx context.Context, repo, d string) error {
	return s.exec(ctx, s.db, `DELETE FROM referrers WHERE repo = ? AND digest = ?`, repo, d)
}

// referrers lists the manifests of repo whose subject is subject, by digest.
func (s *Store) referrers(ctx context.Context, repo, subject string) ([]ocispec.Descriptor, error) {
	rows, err := s.rows(ctx, s.db, `SELECT descriptor FROM referrers WHERE repo = ? AND subject = ? ORDER BY digest`, repo, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ocispec.Descriptor{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var d ocispec.Descriptor
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
