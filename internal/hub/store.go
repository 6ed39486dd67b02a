package hub

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	// Database drivers: "pgx" (PostgreSQL) and "sqlite" (pure Go SQLite).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// DatabaseFile is the SQLite database's file name under the hub root.
const DatabaseFile = "hub.db"

// StoreOptions configures [OpenStore].
type StoreOptions struct {
	// Root is the hub's directory; the SQLite database is Root/hub.db.
	Root string
	// DatabaseURL, when set, selects PostgreSQL instead of SQLite:
	// postgres://user:pass@host:port/db?sslmode=disable.
	DatabaseURL string
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// Store is the hub's metadata: users, groups, grants, tokens, packages,
// approvals, referrers and the audit log, in SQLite or PostgreSQL. It is
// safe for concurrent use.
type Store struct {
	db   *sql.DB
	pg   bool
	root string
	now  func() time.Time
	// auditMu serializes audit appends within this process.
	auditMu sync.Mutex
	// logger receives audit append failures; the hub sets it.
	logger *slog.Logger
	// maxTokenTTL, if positive, bounds the lifetime of tokens: longer
	// ones are issued shorter, and older ones are refused.
	maxTokenTTL time.Duration
}

// OpenStore opens (creating and migrating as needed) the hub database.
func OpenStore(ctx context.Context, o StoreOptions) (*Store, error) {
	if o.Root == "" {
		return nil, errors.New("hub: the root directory is required: pass --root DIR")
	}
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("hub: creating the root directory: %w", err)
	}
	s := &Store{root: o.Root, now: o.Now, logger: slog.New(slog.DiscardHandler)}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if o.DatabaseURL != "" {
		if !strings.HasPrefix(o.DatabaseURL, "postgres://") && !strings.HasPrefix(o.DatabaseURL, "postgresql://") {
			return nil, fmt.Errorf("hub: database URL %q: only postgres:// URLs are supported; omit --database-url to use SQLite", redactURL(o.DatabaseURL))
		}
		s.pg = true
		s.db, err = sql.Open("pgx", o.DatabaseURL)
	} else {
		path := filepath.Join(o.Root, DatabaseFile)
		// The database holds password hashes and token hashes: only the
		// hub's user may read it. SQLite gives its -wal and -shm files
		// the database file's mode.
		if err := ownerOnly(path); err != nil {
			return nil, err
		}
		s.db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate")
		// One connection: SQLite allows one writer, and this avoids
		// SQLITE_BUSY on lock upgrades. Never nest queries.
		s.db.SetMaxOpenConns(1)
	}
	if err != nil {
		return nil, fmt.Errorf("hub: opening the database: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("hub: connecting to the database: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// ownerOnly creates the file path with mode 0600 if it is missing, and
// takes group and other permissions away from it (and from its SQLite
// -wal and -shm files) otherwise.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("hub: opening the database: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("hub: restricting %s to its owner: %w", p, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// redactURL hides a password in a database URL.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (s *Store) rebind(q string) string {
	if !s.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) error {
	_, err := q.ExecContext(ctx, s.rebind(query), args...)
	return err
}

func (s *Store) row(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.rebind(query), args...)
}

func (s *Store) rows(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.rebind(query), args...)
}

// conn is a database handle transactions start on: *sql.DB or *sql.Conn.
type conn interface {
	querier
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// txOn runs f in a transaction on c: committed when f returns nil,
// rolled back when it returns an error or panics. A transaction left
// open would hold SQLite's only connection (and its write lock) for
// good, so a panic rolls back before it goes on.
func txOn(ctx context.Context, c conn, f func(tx *sql.Tx) error) (err error) {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting a transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback()
		}
	}()
	if err := f(tx); err != nil {
		done = true
		tx.Rollback()
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing a transaction: %w", err)
	}
	return nil
}

// Names of the database-wide locks (see withLock).
const (
	lockMigrate = "skiff.migrate"
	lockAudit   = "skiff.audit"
)

// withLock runs f holding the lock name across every process sharing
// the database, on the connection f receives. In PostgreSQL that is a
// session advisory lock keyed by name and the current schema, taken on a
// dedicated connection, so hub replicas sharing one database take turns.
// SQLite is one process (one hub replica): its single connection and
// immediate transactions serialize writers already, so f gets the pool.
func (s *Store) withLock(ctx context.Context, name string, f func(c conn) error) error {
	if !s.pg {
		return f(s.db)
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1::text || '.' || current_schema()))`, name); err != nil {
		return fmt.Errorf("taking the %s lock: %w", name, err)
	}
	// Unlock even if ctx is done or f panics; if that fails, drop the
	// connection so the lock cannot stay held by a pooled session.
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := c.ExecContext(uctx, `SELECT pg_advisory_unlock(hashtext($1::text || '.' || current_schema()))`, name); err != nil {
			c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return f(c)
}

// migration is one schema step; {{id}} is the dialect's auto-increment
// primary key.
type migration struct {
	version int
	sql     string
}

var migrations = []migration{{1, `
CREATE TABLE users (
	id {{id}},
	name TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	admin INTEGER NOT NULL DEFAULT 0,
	totp_secret TEXT NOT NULL DEFAULT '',
	totp_pending TEXT NOT NULL DEFAULT '',
	totp_last_step BIGINT NOT NULL DEFAULT 0,
	created BIGINT NOT NULL
);
CREATE TABLE hub_groups (
	id {{id}},
	name TEXT NOT NULL UNIQUE
);
CREATE TABLE group_members (
	group_name TEXT NOT NULL,
	user_name TEXT NOT NULL,
	PRIMARY KEY (group_name, user_name)
);
CREATE TABLE grants (
	owner TEXT NOT NULL,
	subject TEXT NOT NULL,
	level INTEGER NOT NULL,
	PRIMARY KEY (owner, subject)
);
CREATE TABLE tokens (
	id {{id}},
	user_name TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
);
CREATE TABLE packages (
	id {{id}},
	owner TEXT NOT NULL,
	name TEXT NOT NULL,
	version TEXT NOT NULL,
	digest TEXT NOT NULL,
	root TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	signatures TEXT NOT NULL DEFAULT '',
	gates TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	uploader TEXT NOT NULL,
	created BIGINT NOT NULL,
	updated BIGINT NOT NULL,
	UNIQUE (owner, name, version)
);
CREATE INDEX packages_digest ON packages (digest);
CREATE TABLE package_digests (
	package_id BIGINT NOT NULL,
	digest TEXT NOT NULL,
	PRIMARY KEY (package_id, digest)
);
CREATE INDEX package_digests_digest ON package_digests (digest);
CREATE TABLE approvals (
	package_id BIGINT NOT NULL,
	user_name TEXT NOT NULL,
	decision TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	time BIGINT NOT NULL,
	PRIMARY KEY (package_id, user_name)
);
CREATE TABLE referrers (
	repo TEXT NOT NULL,
	subject TEXT NOT NULL,
	digest TEXT NOT NULL,
	descriptor TEXT NOT NULL,
	PRIMARY KEY (repo, subject, digest)
);
CREATE TABLE audit (
	seq BIGINT PRIMARY KEY,
	time TEXT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	details TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
`}, {2, `
CREATE TABLE settings (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`}, {3, `
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
UPDATE tokens SET kind = name WHERE name IN ('login', 'web');
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0
`}, {4, `
CREATE TABLE uploads (
	owner TEXT NOT NULL,
	repo TEXT NOT NULL,
	digest TEXT NOT NULL,
	size BIGINT NOT NULL,
	time BIGINT NOT NULL,
	PRIMARY KEY (repo, digest)
);
CREATE INDEX uploads_owner ON uploads (owner, time)
`}}

// SchemaVersion is the schema version this build migrates to.
var SchemaVersion = migrations[len(migrations)-1].version

// migrate brings the schema up to SchemaVersion, once: replicas starting
// together wait for each other on the migration lock.
func (s *Store) migrate(ctx context.Context) error {
	return s.withLock(ctx, lockMigrate, func(c conn) error { return s.migrateOn(ctx, c) })
}

func (s *Store) migrateOn(ctx context.Context, c conn) error {
	if err := s.exec(ctx, c, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("hub: creating the migrations table: %w", err)
	}
	var cur sql.NullInt64
	if err := s.row(ctx, c, `SELECT MAX(version) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("hub: reading the schema version: %w", err)
	}
	if int(cur.Int64) > SchemaVersion {
		return fmt.Errorf("hub: the database has schema version %d, newer than this skiff's %d: upgrade skiff", cur.Int64, SchemaVersion)
	}
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.pg {
		id = "BIGSERIAL PRIMARY KEY"
	}
	for _, m := range migrations {
		if m.version <= int(cur.Int64) {
			continue
		}
		err := txOn(ctx, c, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(strings.ReplaceAll(m.sql, "{{id}}", id), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", strings.TrimSpace(stmt), err)
				}
			}
			return s.exec(ctx, tx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, m.version, s.now().Unix())
		})
		if err != nil {
			return fmt.Errorf("hub: migrating the database to version %d: %w", m.version, err)
		}
	}
	return nil
}

// setSetting stores a hub-wide setting.
func (s *Store) setSetting(ctx context.Context, name, value string) error {
	if err := s.exec(ctx, s.db, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("hub: storing setting %s: %w", name, err)
	}
	return nil
}

// setting returns the value of a hub-wide setting, first storing
// initial() when it has none; every replica sharing the database gets
// the same value.
func (s *Store) setting(ctx context.Context, name string, initial func() string) (string, error) {
	if err := s.exec(ctx, s.db, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, initial()); err != nil {
		return "", fmt.Errorf("hub: storing setting %s: %w", name, err)
	}
	var v string
	if err := s.row(ctx, s.db, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("hub: reading setting %s: %w", name, err)
	}
	return v, nil
}

// snapshotSQLite copies the database with VACUUM INTO into a temporary
// file under Root/tmp and returns its path.
func snapshotSQLite(ctx context.Context, root string) (string, error) {
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(tmp, "backup-*.db")
	if err != nil {
		return "", err
	}
	snap := f.Name()
	f.Close()
	os.Remove(snap) // VACUUM INTO wants to create it
	db, err := sql.Open("sqlite", "file:"+filepath.Join(root, DatabaseFile)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var storage string
	if db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingStorage).Scan(&storage) == nil && storage != "filesystem" {
		return "", fmt.Errorf("%w (%s): hub backup copies Root/storage only: back up the bucket with S3 tools and hub.db with sqlite3 .backup", ErrNotFilesystem, storage)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, snap); err != nil {
		os.Remove(snap)
		return "", fmt.Errorf("snapshotting the database: %w", err)
	}
	return snap, nil
}
