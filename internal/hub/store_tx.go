package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// StoreTx is one transaction of a [Store], given to the function passed
// to [Store.Tx] (or to an audited change) and valid only while it runs.
// Its exported methods are the typed operations code outside the store
// combines atomically; the SQL, the dialect and the driver stay inside
// the store.
type StoreTx struct {
	s   *Store
	stx *sql.Tx
}

// Tx runs f in one transaction of the store: it is committed when f
// returns nil and rolled back when f returns an error (returned as it
// is) or panics (the panic then continues). With SQLite the transaction
// holds the database's write lock from its start, so keep f short and
// free of I/O outside the store.
func (s *Store) Tx(ctx context.Context, f func(tx *StoreTx) error) error {
	return s.txOn(ctx, s.db, f)
}

// txOn runs f in a transaction started on c (the pool, or a connection
// holding a database-wide lock).
func (s *Store) txOn(ctx context.Context, c conn, f func(tx *StoreTx) error) error {
	return txOn(ctx, c, func(stx *sql.Tx) error { return f(&StoreTx{s: s, stx: stx}) })
}

// exec runs a statement in the transaction (? placeholders).
func (tx *StoreTx) exec(ctx context.Context, query string, args ...any) error {
	return tx.s.exec(ctx, tx.stx, query, args...)
}

// affected runs a statement and returns the number of rows it changed.
func (tx *StoreTx) affected(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := tx.stx.ExecContext(ctx, tx.s.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// row runs a query returning at most one row.
func (tx *StoreTx) row(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.s.row(ctx, tx.stx, query, args...)
}

// rows runs a query.
func (tx *StoreTx) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.s.rows(ctx, tx.stx, query, args...)
}

// SetPackageGates sets package p's status and gate results, provided it
// is still in the status p records (errChanged otherwise: it was
// reviewed meanwhile, perhaps by another replica).
func (tx *StoreTx) SetPackageGates(ctx context.Context, p *Package, status string, gates []GateResult) error {
	gateJSON, _ := json.Marshal(gates)
	return tx.changeRow(ctx, `UPDATE packages SET status = ?, gates = ?, updated = ? WHERE id = ? AND status = ?`, status, string(gateJSON), tx.s.now().Unix(), p.ID, p.Status)
}

// changeRow runs a statement that changes a row provided it is still as
// the caller read it: errChanged when it changed none.
func (tx *StoreTx) changeRow(ctx context.Context, query string, args ...any) error {
	n, err := tx.affected(ctx, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return errChanged
	}
	return nil
}

// DeleteApprovals drops every approval and rejection of package id.
func (tx *StoreTx) DeleteApprovals(ctx context.Context, id int64) error {
	return tx.exec(ctx, `DELETE FROM approvals WHERE package_id = ?`, id)
}

// PackageDigests lists the digests recorded for package id (its root,
// everything reachable from it and its signatures), sorted.
func (tx *StoreTx) PackageDigests(ctx context.Context, id int64) ([]string, error) {
	return tx.s.packageDigestsOn(ctx, tx.stx, id)
}

// PackageDigests is [StoreTx.PackageDigests] outside a transaction.
func (s *Store) PackageDigests(ctx context.Context, id int64) ([]string, error) {
	return s.packageDigestsOn(ctx, s.db, id)
}

func (s *Store) packageDigestsOn(ctx context.Context, db querier, id int64) ([]string, error) {
	return s.queryStrings(ctx, db, `SELECT digest FROM package_digests WHERE package_id = ? ORDER BY digest`, id)
}

// queryStrings runs a query of one text column and returns its values (an
// empty slice, not nil, when there are none).
func (s *Store) queryStrings(ctx context.Context, db querier, query string, args ...any) ([]string, error) {
	rows, err := s.rows(ctx, db, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Packages lists packages as [Store.Packages] does, inside the
// transaction.
func (tx *StoreTx) Packages(ctx context.Context, q PackageQuery) ([]Package, error) {
	return tx.s.packagesOn(ctx, tx.stx, q)
}

// OrphanRows counts the digest rows and the approvals that belong to no
// package.
func (tx *StoreTx) OrphanRows(ctx context.Context) (digests, approvals int, err error) {
	for _, c := range []struct {
		table string
		n     *int
	}{{"package_digests", &digests}, {"approvals", &approvals}} {
		if err := tx.row(ctx, `SELECT COUNT(*) FROM `+c.table+` WHERE package_id NOT IN (SELECT id FROM packages)`).Scan(c.n); err != nil {
			return 0, 0, fmt.Errorf("counting orphan %s: %w", c.table, err)
		}
	}
	return digests, approvals, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// publishedDigests lists every digest recorded for a pending, approved
// or blocked package, sorted.
func (s *Store) publishedDigests(ctx context.Context) ([]string, error) {
	return s.queryStrings(ctx, s.db, `SELECT DISTINCT d.digest FROM package_digests d JOIN packages p ON p.id = d.package_id WHERE p.status IN (?, ?, ?) ORDER BY d.digest`, StatusPending, StatusApproved, StatusBlocked)
}

// repositoryHolding returns a repository of a pending, approved or
// blocked package whose recorded content includes digest d ("" if none).
func (s *Store) repositoryHolding(ctx context.Context, d string) (string, error) {
	var owner, name string
	err := s.row(ctx, s.db, `SELECT p.owner, p.name FROM package_digests d JOIN packages p ON p.id = d.package_id WHERE d.digest = ? AND p.status IN (?, ?, ?) ORDER BY p.id LIMIT 1`, d, StatusPending, StatusApproved, StatusBlocked).Scan(&owner, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return owner + "/" + name, nil
}
