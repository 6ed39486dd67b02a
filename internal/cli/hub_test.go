package cli

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/hub"
)

// startTestHub runs a hub for the scripts: its address, the password of
// its site administrator "root", and its trust directory (scripts add
// their signing keys there).
func startTestHub(t *testing.T) (host, adminPassword, trustDir string) {
	t.Helper()
	ctx := context.Background()
	trustDir = t.TempDir()
	h, err := hub.New(ctx, hub.Options{Root: t.TempDir(), TrustDir: trustDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	pw, err := h.Store().InitAdmin(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), pw, trustDir
}
