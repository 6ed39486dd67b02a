// Package hub is an offline package repository: it stores Skiff packages
// in an embedded OCI registry (the distribution API under /v2/), keeps
// users, permissions, tokens, package review state and a hash-chained
// audit log in SQLite or PostgreSQL, and publishes a pushed package only
// after it passed its gates (structure, signature, and any added ones)
// and enough administrators of its owner approved it. docs/hub.md
// describes it.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	skregistry "github.com/skiffhq/skiff/internal/registry"
	"github.com/skiffhq/skiff/internal/sign"
)

// Defaults.
const (
	DefaultApprovals = 1
	DefaultTokenTTL  = 12 * time.Hour
	// MaxTokenTTL is the default of Options.MaxTokenTTL.
	MaxTokenTTL = 90 * 24 * time.Hour
	// LoginAttempts failures per user and client address within
	// LoginWindow block further attempts until the window passes.
	LoginAttempts = 5
	LoginWindow   = 5 * time.Minute
)

// Options configures a hub. Root is required.
type Options struct {
	// Root holds the OCI storage (Root/storage), the SQLite database
	// (Root/hub.db) and the audit head.
	Root string
	// DatabaseURL selects PostgreSQL (postgres://...) instead of SQLite.
	// Several hubs (replicas behind one address) may share one
	// PostgreSQL database and one storage; with SQLite, run one.
	DatabaseURL string
	// Storage selects where package content is stored: Root/storage (the
	// zero value) or an S3 bucket. Backup and Check read the filesystem
	// storage and refuse an S3 hub (ErrNotFilesystem).
	Storage skregistry.Storage
	// Approvals is how many administrators of the owner, other than the
	// uploader, must approve a package; DefaultApprovals if <= 0.
	Approvals int
	// TrustDir holds the public keys (*.pub) a package must be signed
	// with. Reloaded for every review.
	TrustDir string
	// AllowUnsigned skips the signature gate (for test hubs only).
	AllowUnsigned bool
	// Gates run after the structure and signature gates, in order; a
	// package any gate fails is rejected.
	Gates []Gate
	// TokenTTL is the lifetime of login tokens; DefaultTokenTTL if zero.
	TokenTTL time.Duration
	// MaxTokenTTL bounds every token's lifetime (MaxTokenTTL if zero):
	// a longer one asked for is issued this long, and a token older than
	// this is refused, so lowering it also ends older tokens.
	MaxTokenTTL time.Duration
	// UploadPurgeAge is how long an unfinished blob upload is kept
	// before housekeeping deletes it; DefaultUploadPurgeAge if zero.
	UploadPurgeAge time.Duration
	// MaxUnreferenced bounds, per owner, the bytes of blobs uploaded
	// within UploadPurgeAge that no pushed manifest references yet (a
	// push uploads its blobs, then the manifests that reference them):
	// beyond it, new uploads are refused. DefaultMaxUnreferenced if
	// zero; negative for no bound.
	MaxUnreferenced int64
	// Logger receives the hub's and distribution's logs; nil silences them.
	Logger *slog.Logger
	// Now returns the current time; time.Now if nil (tests set it).
	Now func() time.Time
}

// Hub is a package repository; it is an http.Handler. Create it with
// New and release it with Close.
type Hub struct {
	o        Options
	store    *Store
	registry *skregistry.Handler
	mux      *http.ServeMux
	limiter  *limiter
	creds    *credCache
	logger   *slog.Logger
	// lock is a shared hold on ROOT's registry lock while the hub may
	// serve: `registry gc --root` and `registry serve` refuse ROOT.
	lock  *skregistry.RootLock
	sboms sbomCache // the web UI's SBOM summaries
	// wrapRepo, if set (tests), wraps every repository the hub opens
	// in its own storage.
	wrapRepo func(storedRepo) storedRepo
}

// New opens (creating or migrating) the hub's database and storage.
func New(ctx context.Context, o Options) (*Hub, error) {
	if o.Approvals <= 0 {
		o.Approvals = DefaultApprovals
	}
	if o.MaxTokenTTL <= 0 {
		o.MaxTokenTTL = MaxTokenTTL
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	o.TokenTTL = min(o.TokenTTL, o.MaxTokenTTL)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UploadPurgeAge <= 0 {
		o.UploadPurgeAge = DefaultUploadPurgeAge
	}
	if o.MaxUnreferenced == 0 {
		o.MaxUnreferenced = DefaultMaxUnreferenced
	}
	if o.TrustDir != "" {
		// Refuse at start what every review would refuse: a trust
		// directory anyone may write, or a key that does not parse.
		if _, err := sign.LoadTrust(o.TrustDir); err != nil {
			return nil, fmt.Errorf("hub: trust directory: %w", err)
		}
	}
	// Shared with the replicas on ROOT; refused while a registry serves
	// ROOT or sweeps its storage.
	if o.Root == "" {
		return nil, errors.New("hub: Root is required")
	}
	lock, err := skregistry.LockServed(o.Root, "skiff hub serve --root "+o.Root)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			lock.Release()
		}
	}()
	st, err := OpenStore(ctx, StoreOptions{Root: o.Root, DatabaseURL: o.DatabaseURL, Now: o.Now})
	if err != nil {
		return nil, err
	}
	// Replicas share the secret signing upload state, so an upload
	// started on one may continue on another.
	secret, err := st.setting(ctx, settingRegistrySecret, randomSecret)
	if err == nil {
		err = st.setSetting(ctx, settingStorage, storageName(o.Storage))
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	reg, err := skregistry.NewHandler(ctx, skregistry.HandlerOptions{RootDir: o.Root, Storage: o.Storage, Secret: secret, Logger: o.Logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st.logger = logger
	st.maxTokenTTL = o.MaxTokenTTL
	h := &Hub{
		o:        o,
		store:    st,
		registry: reg,
		lock:     lock,
		limiter:  newLimiter(LoginAttempts, LoginWindow, o.Now),
		creds:    newCredCache(o.Now),
		logger:   logger,
	}
	h.routes()
	// A killed hub leaves review archives in ROOT/tmp. With SQLite this
	// is the only hub on ROOT, so all of its reviews' go; replicas
	// sharing ROOT (PostgreSQL) may be reviewing, so only stale ones do.
	// (Backups run by another process keep their snapshot until stale.)
	fresh := ""
	if o.DatabaseURL == "" {
		fresh = "review-*"
	}
	if _, err := h.cleanTemp(o.Now().Add(-staleTempAge), fresh); err != nil {
		logger.Warn("hub: cleaning ROOT/tmp", "err", err)
	}
	ok = true
	return h, nil
}

// Store returns the hub's metadata store.
func (h *Hub) Store() *Store { return h.store }

// Close releases the database and the registry.
func (h *Hub) Close() error {
	h.registry.Close()
	err := h.store.Close()
	h.lock.Release()
	return err
}

// ServeHTTP serves the OCI distribution API under /v2/, the JSON API
// under /api/v1/ and the web UI under /ui/.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// ServeOptions configures [Hub.Serve].
type ServeOptions struct {
	// CertFile and KeyFile enable TLS.
	CertFile, KeyFile string
}

// Serve serves on ln until ctx is done, then drains open requests for a
// few seconds.
func (h *Hub) Serve(ctx context.Context, ln net.Listener, o ServeOptions) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(discard{}, "", 0),
	}
	h.lock.Describe("skiff hub serve --root " + h.o.Root + " on " + ln.Addr().String())
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	go h.maintainLoop(mctx)
	errc := make(chan error, 1)
	go func() {
		var err error
		if o.CertFile != "" {
			err = srv.ServeTLS(ln, o.CertFile, o.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("hub: serving: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return <-errc
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// InitAdmin creates site administrator name with a random password,
// which it returns, unless a user of that name exists ("" then).
func (s *Store) InitAdmin(ctx context.Context, name string) (string, error) {
	if _, err := s.User(ctx, name); err == nil {
		return "", nil
	}
	pw := RandomPassword()
	if err := s.addUser(ctx, name, pw, true, &auditRecord{"system", ActionUserAdd, name, map[string]any{"admin": true}}); err != nil {
		return "", err
	}
	return pw, nil
}

// Settings the hub keeps in its database.
const (
	settingRegistrySecret = "registry.secret"
	// settingStorage names the content storage the hub last ran with:
	// "filesystem" or s3://BUCKET/PREFIX.
	settingStorage = "storage"
)

// ErrNotFilesystem reports an operation that reads the hub's content
// storage under its root (backup; check without S3 settings) on a hub
// storing it in S3.
var ErrNotFilesystem = errors.New("the hub stores its content in S3, not under its root directory")

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func storageName(s skregistry.Storage) string {
	if s.S3 == nil {
		return "filesystem"
	}
	return "s3://" + s.S3.Bucket + "/" + strings.TrimPrefix(s.S3.RootDirectory, "/")
}

// checkStorage refuses storage other than the one the hub's database
// says it last ran with, for operations that read the content storage
// directly (op names the operation).
func (s *Store) checkStorage(ctx context.Context, storage skregistry.Storage, op string) error {
	var v string
	err := s.row(ctx, s.db, `SELECT value FROM settings WHERE name = ?`, settingStorage).Scan(&v)
	if err != nil || v == storageName(storage) {
		return nil // never served, or served from this storage
	}
	if storage.S3 == nil {
		return fmt.Errorf("%w (%s): pass %s the storage flags the hub serves with (--storage s3 --s3-bucket …, credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", ErrNotFilesystem, v, op)
	}
	return fmt.Errorf("%s: the hub stores its content in %s, not %s: pass the storage flags the hub serves with", op, v, storageName(storage))
}

// tempDir is where reviews rebuild archives.
func (h *Hub) tempDir() (string, error) {
	d := filepath.Join(h.o.Root, "tmp")
	return d, os.MkdirAll(d, 0o700)
}
