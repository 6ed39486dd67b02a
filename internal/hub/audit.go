package hub

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/hubapi"
)

// ErrAuditTampered reports an audit log whose hash chain does not hold.
var ErrAuditTampered = errors.New("the audit log was altered")

// auditHeadFile, under the hub root, records the last appended entry so
// that deleting entries from the end of the log is detected too.
const auditHeadFile = "audit-head.json"

// Audit actions.
const (
	ActionLogin       = "login"
	ActionLoginFailed = "login.failed"
	ActionPush        = "push"
	// ActionPushFailed withdraws a push record whose manifest the
	// registry then refused.
	ActionPushFailed = "push.failed"
	ActionSubmit     = "submit"
	ActionPull       = "pull"
	ActionApprove    = "approve"
	ActionReject     = "reject"
	ActionRemove     = "remove"
	// ActionRemoveFailed follows a remove entry whose package's tag could
	// not then be deleted from storage (details.error says why).
	ActionRemoveFailed = "remove.failed"
	ActionUserAdd      = "user.add"
	ActionGrant        = "grant"
	ActionGroupAdd     = "group.add"
	ActionToken        = "token.create"
	ActionMFA          = "mfa"
	// ActionRegistryDelete is a DELETE of a manifest or blob under /v2/,
	// made or refused (details.refused says why).
	ActionRegistryDelete = "registry.delete"
)

// AuditEntry is [hubapi.AuditEntry].
type AuditEntry = hubapi.AuditEntry

func computeHash(e *AuditEntry) string {
	b, _ := json.Marshal([]any{e.Seq, e.Time, e.Actor, e.Action, e.Target, e.Details, e.PrevHash})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ErrAuditFailed reports that an audit entry could not be appended. A
// state change the audit log records is then not made: the change and
// its entry are committed in one transaction, or neither is.
var ErrAuditFailed = hubapi.ErrAuditFailed

// auditError is an ErrAuditFailed with its cause. Its public message
// (shown to API clients) leaves the cause out: that goes to the log.
type auditError struct {
	action string
	// made is true when the change was made before the append failed
	// (the few changes not committed together with their entry).
	made bool
	err  error
}

func (e *auditError) public() string {
	if e.made {
		return fmt.Sprintf("%s: the change (%s) was made but is not in the audit log: see the hub's log, fix its database or disk, and record it by hand", ErrAuditFailed, e.action)
	}
	return fmt.Sprintf("%s, so the change (%s) was not made: see the hub's log, fix its database or disk, and try again", ErrAuditFailed, e.action)
}

func (e *auditError) Error() string   { return e.public() + ": " + e.err.Error() }
func (e *auditError) Unwrap() []error { return []error{ErrAuditFailed, e.err} }

// auditRecord is an audit entry to append. details is encoded as JSON
// (maps with sorted keys); a func() any is called, after the change it
// records, to get them.
type auditRecord struct {
	actor, action, target string
	details               any
}

// Audit appends an entry. details is encoded as JSON (maps with sorted
// keys). Appends are serialized, across hub replicas too (PostgreSQL);
// the head is recorded beside the database. A failure wraps
// ErrAuditFailed.
func (s *Store) Audit(ctx context.Context, actor, action, target string, details any) error {
	return s.audited(ctx, &auditRecord{actor, action, target, details}, nil)
}

// audited runs change (if not nil) and appends rec in one transaction:
// both are committed or neither is. A nil rec runs change alone. An
// error of the append wraps ErrAuditFailed and is logged; errors of
// change are returned as they are.
func (s *Store) audited(ctx context.Context, rec *auditRecord, change func(tx *StoreTx) error) error {
	if rec == nil {
		return s.Tx(ctx, change)
	}
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	// One append at a time across replicas sharing a PostgreSQL
	// database: the lock covers reading the head, inserting the entry
	// and recording the head file, so the chain never forks and the head
	// file only moves forward. Changes take it before their row locks.
	var changeErr error
	err := s.withLock(ctx, lockAudit, func(c conn) error {
		var e AuditEntry
		err := s.txOn(ctx, c, func(tx *StoreTx) error {
			if change != nil {
				if changeErr = change(tx); changeErr != nil {
					return changeErr
				}
			}
			details := rec.details
			if f, ok := details.(func() any); ok {
				details = f()
			}
			d := "{}"
			if details != nil {
				b, err := json.Marshal(details)
				if err != nil {
					return fmt.Errorf("encoding audit details: %w", err)
				}
				d = string(b)
			}
			e = AuditEntry{Time: s.now().UTC().Format(time.RFC3339Nano), Actor: rec.actor, Action: rec.action, Target: rec.target, Details: d}
			err := tx.row(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&e.Seq, &e.PrevHash)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if ctx.Value(resealKey{}) == nil {
				if err := s.checkHead(ctx, tx.stx, e.Seq); err != nil {
					return err
				}
			}
			e.Seq++
			e.Hash = computeHash(&e)
			return tx.exec(ctx, `INSERT INTO audit (seq, time, actor, action, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				e.Seq, e.Time, e.Actor, e.Action, e.Target, e.Details, e.PrevHash, e.Hash)
		})
		if err != nil {
			return err
		}
		head, _ := json.Marshal(auditHead{e.Seq, e.Hash})
		if err := atomicfile.WriteFile(filepath.Join(s.root, auditHeadFile), head, 0o600); err != nil {
			// The change and its entry are committed; only the head
			// (which detects truncation) lags behind.
			return &auditError{action: rec.action, made: true, err: fmt.Errorf("recording the audit head: %w", err)}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case changeErr != nil && errors.Is(err, changeErr):
		return changeErr
	}
	var ae *auditError
	if !errors.As(err, &ae) {
		ae = &auditError{action: rec.action, err: fmt.Errorf("appending to the audit log: %w", err)}
	}
	if errors.Is(err, ErrAuditTampered) {
		// An alarm: the log lost entries (or its head) since the last
		// append. Nothing is appended until an operator looks.
		s.logger.Error("hub: ALARM: the audit log was altered; every audited change is refused until it is investigated (skiff hub audit verify, then restore a backup or skiff hub audit reseal)",
			"action", rec.action, "actor", rec.actor, "target", rec.target, "err", ae.err)
		return ae
	}
	s.logger.Error("hub: audit append failed", "action", rec.action, "actor", rec.actor, "target", rec.target, "err", ae.err)
	return ae
}

// auditHead is the content of the audit head file.
type auditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// readHead reads the audit head file; ok is false when there is none.
func (s *Store) readHead() (h auditHead, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(s.root, auditHeadFile))
	if errors.Is(err, fs.ErrNotExist) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Seq <= 0 {
		return h, false, fmt.Errorf("%w: %s is not an audit head", ErrAuditTampered, auditHeadFile)
	}
	return h, true, nil
}

// checkHead refuses an append to a log whose last entry is last when
// the head file records an entry the log no longer holds (entries were
// deleted from the end, or rewritten), or when the head file is gone
// although the log has entries. It wraps ErrAuditTampered.
func (s *Store) checkHead(ctx context.Context, q querier, last int64) error {
	h, ok, err := s.readHead()
	switch {
	case err != nil:
		return err
	case !ok && last > 0:
		return fmt.Errorf("%w: the log has %d entries but %s is missing: it was deleted", ErrAuditTampered, last, auditHeadFile)
	case !ok:
		return nil
	case h.Seq > last:
		return fmt.Errorf("%w: the log ends at entry %d but entry %d was written: entries were deleted from the end", ErrAuditTampered, last, h.Seq)
	}
	var hash string
	if err := s.row(ctx, q, `SELECT hash FROM audit WHERE seq = ?`, h.Seq).Scan(&hash); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if hash != h.Hash {
		return fmt.Errorf("%w: entry %d is not the one written: the log was rewritten", ErrAuditTampered, h.Seq)
	}
	return nil
}

// resealKey marks the context of the append that reseals the log: it
// skips the head check.
type resealKey struct{}

// ActionAuditReseal is the audit action of [Store.ResealAudit].
const ActionAuditReseal = "audit.reseal"

// ResealAudit lets a hub whose audit log was found altered record
// again, after an operator investigated (and did not restore a backup):
// it appends an entry, by actor, whose details list the problems
// VerifyAudit finds and the head that was recorded, and makes it the
// head. The chain stays verifiable from there on; the gap stays
// documented in the log.
func (s *Store) ResealAudit(ctx context.Context, actor string) (*AuditReport, error) {
	rep, verr := s.VerifyAudit(ctx)
	if rep == nil {
		return nil, verr
	}
	problems := rep.Problems
	if problems == nil {
		problems = []string{}
	}
	details := map[string]any{"problems": problems}
	if h, ok, _ := s.readHead(); ok {
		details["recordedHead"] = h
	}
	if err := s.Audit(context.WithValue(ctx, resealKey{}, true), actor, ActionAuditReseal, "audit", details); err != nil {
		return rep, err
	}
	return rep, nil
}

// publicMessage is what a client is told of an internal error: what an
// audit failure means, or to see the hub's log.
func publicMessage(err error) string {
	var ae interface{ public() string }
	if errors.As(err, &ae) {
		return ae.public()
	}
	return "internal error: see the hub's log"
}

// markMade notes on an audit failure that the change it was to record
// had been made before (the entry was appended after the change).
func markMade(err error) error {
	var ae *auditError
	if errors.As(err, &ae) {
		c := *ae
		c.made = true
		return &c
	}
	return err
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	// After returns entries with Seq > After.
	After int64
	// Limit bounds the entries returned; 100 if zero.
	Limit int
}

// AuditLog returns entries in sequence order.
func (s *Store) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := s.rows(ctx, s.db, `SELECT seq, time, actor, action, target, details, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, q.After, q.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Action, &e.Target, &e.Details, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditReport is [hubapi.AuditReport].
type AuditReport = hubapi.AuditReport

// VerifyAudit walks the whole log and checks that sequence numbers are
// contiguous from 1, that each entry links to the previous one and that
// each hash matches the entry; and that the head recorded beside the
// database is still in the log. An edited, deleted, inserted or
// reordered entry breaks one of these. The error wraps ErrAuditTampered
// when a problem was found.
func (s *Store) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	r := &AuditReport{}
	var prev string
	hashes := map[int64]string{}
	for after := int64(0); ; {
		page, err := s.AuditLog(ctx, AuditQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			r.Entries++
			switch {
			case e.Seq != r.Entries:
				r.Problems = append(r.Problems, fmt.Sprintf("entry %d follows entry %d: entries are missing or were reordered", e.Seq, after))
				r.Entries = e.Seq
			case e.PrevHash != prev:
				r.Problems = append(r.Problems, fmt.Sprintf("entry %d does not link to entry %d: an entry was removed, inserted or edited", e.Seq, e.Seq-1))
			}
			if h := computeHash(&e); h != e.Hash {
				r.Problems = append(r.Problems, fmt.Sprintf("entry %d (%s %s by %s) does not match its hash: it was edited", e.Seq, e.Action, e.Target, e.Actor))
			}
			hashes[e.Seq] = e.Hash
			prev, after = e.Hash, e.Seq
		}
	}
	r.Head = prev
	switch head, ok, err := s.readHead(); {
	case err != nil:
		r.Problems = append(r.Problems, fmt.Sprintf("reading %s: %v", auditHeadFile, err))
	case !ok && r.Entries > 0:
		r.Problems = append(r.Problems, fmt.Sprintf("the log has %d entries but %s is missing: it was deleted", r.Entries, auditHeadFile))
	case !ok:
	default:
		if h, ok := hashes[head.Seq]; !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("the log ends at entry %d but entry %d was written: entries were deleted from the end", r.Entries, head.Seq))
		} else if h != head.Hash {
			r.Problems = append(r.Problems, fmt.Sprintf("entry %d is not the one written: the log was rewritten", head.Seq))
		}
	}
	r.OK = len(r.Problems) == 0
	if !r.OK {
		return r, fmt.Errorf("%w: %d problem(s), the first: %s", ErrAuditTampered, len(r.Problems), r.Problems[0])
	}
	return r, nil
}
