// Package registry runs an OCI distribution registry inside the process:
// distribution v3 with filesystem storage, optional TLS and htpasswd auth.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// The access controller and storage driver register themselves.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// DefaultAddr is where a registry listens when Options.Addr is empty.
const DefaultAddr = "127.0.0.1:5000"

// shutdownTimeout bounds the graceful drain when Serve's context ends.
const shutdownTimeout = 5 * time.Second

// Options configures a registry. RootDir is required.
type Options struct {
	// RootDir holds the stored content (RootDir/storage) and, when
	// SelfSigned, the generated certificate.
	RootDir string
	// Addr is the listen address; DefaultAddr if empty. Use 127.0.0.1:0
	// for a free port.
	Addr string
	// CertFile and KeyFile enable TLS with the given PEM files.
	CertFile, KeyFile string
	// SelfSigned generates (or reuses) a certificate for 127.0.0.1,
	// localhost and Hosts under RootDir and serves TLS with it.
	SelfSigned bool
	// Hosts are extra names or IPs for the self-signed certificate.
	Hosts []string
	// Htpasswd is an htpasswd file (bcrypt entries); when set, every
	// request needs basic auth.
	Htpasswd string
	// Logger receives distribution's log output; nil silences it.
	Logger *slog.Logger
}

// Server is a running registry. Create it with New, then call Serve.
type Server struct {
	app      *handlers.App
	srv      *http.Server
	ln       net.Listener
	tls      bool
	caPEM    []byte
	caFile   string
	logger   *slog.Logger
	closeMu  sync.Mutex
	closed   bool
	serveErr chan error
	lock     *RootLock // on RootDir, held while the registry may serve
}

// New configures a registry and binds its listener; it does not serve
// until Serve is called.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.RootDir == "" {
		return nil, errors.New("registry: RootDir is required")
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("registry: CertFile and KeyFile must be given together")
	}
	if o.SelfSigned && o.CertFile != "" {
		return nil, errors.New("registry: SelfSigned and CertFile exclude each other: pick one")
	}
	// distribution exports OpenTelemetry traces to localhost:4318 unless
	// told otherwise; an air-gapped process has nowhere to send them.
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	if o.Htpasswd != "" {
		// distribution creates a missing htpasswd file with a random
		// password; refuse instead, so a typo cannot open a registry
		// nobody can log in to.
		if _, err := os.Stat(o.Htpasswd); err != nil {
			return nil, fmt.Errorf("registry: htpasswd file: %w", err)
		}
	}
	storage := filepath.Join(o.RootDir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("registry: creating storage: %w", err)
	}
	// Held until the registry stops: GC refuses to sweep under it.
	lock, err := lockRoot(o.RootDir, "serve", false)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Release()
		}
	}()

	s := &Server{logger: o.Logger, serveErr: make(chan error, 1), lock: lock}
	var tlsConf *tls.Config
	certFile, keyFile := o.CertFile, o.KeyFile
	if o.SelfSigned {
		var err error
		certFile, keyFile, err = SelfSignedCert(o.Hosts, o.RootDir)
		if err != nil {
			return nil, err
		}
		if s.caPEM, err = os.ReadFile(certFile); err != nil {
			return nil, fmt.Errorf("registry: reading certificate: %w", err)
		}
		if s.caFile, err = filepath.Abs(certFile); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("registry: loading TLS key pair: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.tls = true
	}

	cfg := config(storage, o.Htpasswd)
	captureLogs(o.Logger)
	app, err := newApp(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.app = app

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		app.Shutdown()
		return nil, fmt.Errorf("registry: listening on %s: %w (is another registry running there? pick another --addr)", o.Addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           app,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errorLog(o.Logger),
	}
	ok = true
	return s, nil
}

// errorLog routes net/http's own messages (TLS handshake failures and
// the like) to l, or discards them.
func errorLog(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}

// newApp builds the distribution application, turning its configuration
// panics into errors.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("registry: configuring distribution: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

func config(storage, htpasswd string) *configuration.Configuration {
	cfg := &configuration.Configuration{
		Version: configuration.Version("0.1"),
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": storage},
			"delete":     configuration.Parameters{"enabled": true},
			"cache":      configuration.Parameters{"blobdescriptor": "inmemory"},
		},
		// Without MaxEntries the catalog endpoint lists nothing.
		Catalog: configuration.Catalog{MaxEntries: 10000},
	}
	cfg.Log.AccessLog.Disabled = true
	cfg.Log.Level = "info"
	cfg.HTTP.Secret = randomSecret()
	cfg.HTTP.Headers = http.Header{"X-Content-Type-Options": []string{"nosniff"}}
	if htpasswd != "" {
		cfg.Auth = configuration.Auth{
			"htpasswd": configuration.Parameters{"realm": "skiff", "path": htpasswd},
		}
	}
	return cfg
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Addr is the address the registry listens on, as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// TLS reports whether the registry serves HTTPS.
func (s *Server) TLS() bool { return s.tls }

// CACertPEM is the self-signed certificate (which is its own CA) in PEM,
// or nil when the registry was not started with SelfSigned.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// CACertFile is the absolute path of the self-signed certificate (which
// is its own CA): what clients pass as --ca-file. Empty when the
// registry was not started with SelfSigned.
func (s *Server) CACertFile() string { return s.caFile }

// Serve serves requests until ctx is done, then drains open requests for
// a few seconds and returns nil. It returns early with an error if the
// listener fails.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	select {
	case err := <-s.serveErr:
		s.shutdownApp()
		if err != nil {
			return fmt.Errorf("registry: serving: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still running after the drain period are cut off.
		if s.logger != nil {
			s.logger.Warn("registry: closing connections still open after the drain period", "timeout", shutdownTimeout)
		}
		err = s.srv.Close()
	}
	<-s.serveErr
	s.shutdownApp()
	if err != nil {
		return fmt.Errorf("registry: shutting down: %w", err)
	}
	return nil
}

// Close stops the registry at once, dropping open connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.ln.Close()
	s.shutdownApp()
	return err
}

func (s *Server) shutdownApp() {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.app.Shutdown()
	releaseLogs(s.logger)
	s.lock.Release()
}
