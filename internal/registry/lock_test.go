package registry

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestGCRefusedWhileServing: garbage collection of a root a registry
// serves is refused (the registry's blob cache would keep claiming swept
// blobs); a second registry on the same root is refused too; once the
// registry stops, GC runs.
func TestGCRefusedWhileServing(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock on Windows")
	}
	root := t.TempDir()
	s, err := New(t.Context(), Options{RootDir: root, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	pushBlobAndManifest(t, &http.Client{Timeout: 10 * time.Second}, "http://"+s.Addr(), "app")

	_, err = GC(context.Background(), root, GCOptions{})
	if !errors.Is(err, ErrServing) || !strings.Contains(err.Error(), "stop `skiff registry serve` first") {
		t.Fatalf("GC while serving: error = %v, want ErrServing naming the fix", err)
	}
	if s2, err := New(t.Context(), Options{RootDir: root, Addr: "127.0.0.1:0"}); !errors.Is(err, ErrServing) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second registry on the same root: error = %v, want ErrServing", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := GC(context.Background(), root, GCOptions{}); err != nil {
		t.Fatalf("GC after the registry stopped: %v", err)
	}
	// And the registry starts again after GC.
	s3, err := New(t.Context(), Options{RootDir: root, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("registry after GC: %v", err)
	}
	s3.Close()
}
