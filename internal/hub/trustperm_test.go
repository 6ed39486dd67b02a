package hub_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/sign"
)

// TestTrustDirAnyoneMayWrite: a hub refuses to start on a trust directory
// any user may write (they could trust their own key).
func TestTrustDirAnyoneMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file modes on Windows")
	}
	_, trustDir := hubtest.TrustedKey(t)
	if err := os.Chmod(trustDir, 0o777); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(context.Background(), hub.Options{Root: t.TempDir(), TrustDir: trustDir})
	if err == nil {
		h.Close()
	}
	if !errors.Is(err, sign.ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod o-w "+trustDir) {
		t.Fatalf("hub.New error = %v, want ErrInsecurePermissions naming chmod o-w", err)
	}
}
