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

	"github.com/distribution/distribution/v3/registry/handlers"
)

// HandlerOptions configures [NewHandler].
type HandlerOptions struct {
	// RootDir holds the stored content (RootDir/storage). Required.
	RootDir string
	// Logger receives distribution's log output; nil silences it.
	Logger *slog.Logger
}

// Handler is the OCI distribution API (/v2/...) over filesystem storage,
// without a listener and without authentication: the embedding server
// authenticates and authorizes requests before passing them on. Close it
// when done.
type Handler struct {
	app    *handlers.App
	logger *slog.Logger
	once   sync.Once
}

// NewHandler configures a distribution application storing its content
// under o.RootDir/storage.
func NewHandler(ctx context.Context, o HandlerOptions) (*Handler, error) {
	if o.RootDir == "" {
		return nil, errors.New("registry: RootDir is required")
	}
	if os.Getenv("OTEL_TRACES_EXPORTER") == "" {
		os.Setenv("OTEL_TRACES_EXPORTER", "none")
	}
	storage := filepath.Join(o.RootDir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("registry: creating storage: %w", err)
	}
	captureLogs(o.Logger)
	cfg := config(storage, "")
	// Accept manifests whose non-distributable layers name http(s) URLs
	// (the OCI spec allows them; distribution otherwise answers 500).
	// Such layers are not stored, so a package holding one fails review.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	app, err := newApp(ctx, cfg)
	if err != nil {
		releaseLogs(o.Logger)
		return nil, err
	}
	return &Handler{app: app, logger: o.Logger}, nil
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
