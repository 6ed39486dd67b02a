package cli

import (
	"context"
	"testing"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
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
	host = hubtest.Serve(t, h)
	pw, err := h.Store().InitAdmin(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	return host, pw, trustDir
}
