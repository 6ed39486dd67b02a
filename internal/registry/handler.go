package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// The S3 storage driver registers itself.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// HandlerOptions configures [NewHandler].
type HandlerOptions struct {
	// RootDir holds the stored content (RootDir/storage). Required
	// unless Storage.S3 is set.
	RootDir string
	// Storage selects where content is stored: RootDir/storage on the
	// filesystem (the zero value) or an S3 bucket.
	Storage Storage
	// Secret signs the state of blob uploads between requests. Several
	// handlers serving one storage behind one address must share it, so
	// an upload started on one can continue on another; random if empty.
	Secret string
	// Logger receives distribution's log output; nil silences it.
	Logger *slog.Logger
}

// Storage selects the content storage of a [Handler].
type Storage struct {
	// S3, when set, stores content in an S3 (or S3-compatible) bucket
	// instead of the filesystem.
	S3 *S3Storage
}

// S3Storage is an S3 bucket, through distribution's s3-aws driver.
// Content is always proxied by the handler (never redirected to the
// bucket), so clients need no access to it.
type S3Storage struct {
	// Endpoint is the URL of an S3-compatible service
	// (http://127.0.0.1:9000); empty for AWS itself.
	Endpoint string
	// Region is the bucket's region (required for AWS; any value, such
	// as "us-east-1", for other services).
	Region string
	// Bucket must exist.
	Bucket string
	// AccessKey and SecretKey are the credentials; empty to use the
	// environment's (instance profile, AWS_* variables).
	AccessKey, SecretKey string
	// RootDirectory is a key prefix inside the bucket.
	RootDirectory string
	// ForcePathStyle addresses the bucket as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT (most S3-compatible services need it).
	ForcePathStyle bool
	// Insecure speaks plain HTTP to the endpoint.
	Insecure bool
}

// ErrNotFilesystem reports an operation that reads the storage's files
// directly, on a handler storing content elsewhere (S3).
var ErrNotFilesystem = errors.New("the registry storage is not a filesystem directory")

// parameters are the s3-aws driver's configuration.
func (s *S3Storage) parameters() (configuration.Parameters, error) {
	if s.Bucket == "" {
		return nil, errors.New("registry: the S3 bucket is required: pass --s3-bucket")
	}
	region := s.Region
	if region == "" {
		if s.Endpoint == "" {
			return nil, errors.New("registry: the S3 region is required: pass --s3-region")
		}
		region = "us-east-1"
	}
	p := configuration.Parameters{
		"region":         region,
		"bucket":         s.Bucket,
		"forcepathstyle": s.ForcePathStyle,
		"secure":         !s.Insecure,
	}
	if s.Endpoint != "" {
		p["regionendpoint"] = s.Endpoint
	}
	if s.AccessKey != "" {
		p["accesskey"], p["secretkey"] = s.AccessKey, s.SecretKey
	}
	if s.RootDirectory != "" {
		p["rootdirectory"] = s.RootDirectory
	}
	return p, nil
}

// Handler is the OCI distribution API (/v2/...) over filesystem or S3
// storage, without a listener and without authentication: the embedding
// server authenticates and authorizes requests before passing them on.
// Close it when done.
type Handler struct {
	app *handlers.App
	// ns is the storage app serves, with its caches: [Handler.Repository]
	// reads and writes through it.
	ns     distribution.Namespace
	logger *slog.Logger
	once   sync.Once
	// driver and params configure the storage driver (for maintenance).
	driver string
	params configuration.Parameters
}

// NewHandler configures a distribution application storing its content
// under o.RootDir/storage or in o.Storage.S3.
func NewHandler(ctx context.Context, o HandlerOptions) (*Handler, error) {
	if o.RootDir == "" && o.Storage.S3 == nil {
		return nil, errors.New("registry: RootDir is required")
	}
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	var cfg *configuration.Configuration
	if o.Storage.S3 != nil {
		params, err := o.Storage.S3.parameters()
		if err != nil {
			return nil, err
		}
		cfg = config("", "")
		delete(cfg.Storage, "filesystem")
		cfg.Storage["s3"] = params
		// Serve blobs through the handler: the hub's access control
		// applies, and clients need not reach the bucket.
		cfg.Storage["redirect"] = configuration.Parameters{"disable": true}
	} else {
		storage := filepath.Join(o.RootDir, "storage")
		if err := os.MkdirAll(storage, 0o755); err != nil {
			return nil, fmt.Errorf("registry: creating storage: %w", err)
		}
		cfg = config(storage, "")
	}
	if o.Secret != "" {
		cfg.HTTP.Secret = o.Secret
	}
	captureLogs(o.Logger)
	// Accept manifests whose non-distributable layers name http(s) URLs
	// (the OCI spec allows them; distribution otherwise answers 500).
	// Such layers are not stored, so a package holding one fails review.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	take := capture(cfg)
	app, err := newApp(ctx, cfg)
	if err != nil {
		releaseLogs(o.Logger)
		return nil, err
	}
	ns, err := take()
	if err != nil {
		app.Shutdown()
		releaseLogs(o.Logger)
		return nil, err
	}
	return &Handler{app: app, ns: ns, logger: o.Logger, driver: cfg.Storage.Type(), params: cfg.Storage.Parameters()}, nil
}

// ServeHTTP serves the distribution API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.app.ServeHTTP(w, r) }

// Close releases the application's background resources.
func (h *Handler) Close() error {
	h.once.Do(func() {
		h.app.Shutdown()
		releaseLogs(h.logger)
	})
	return nil
}
