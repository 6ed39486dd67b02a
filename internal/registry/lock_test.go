package registry

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
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

// TestGCHubRoot: a root holding a hub marker is refused by GC and
// CheckNotHub (naming --allow-hub-root) unless AllowHubRoot; a shared
// hold (a serving hub) refuses GC and `registry serve` but not another
// shared hold.
func TestGCHubRoot(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock on Windows")
	}
	ctx := context.Background()
	for _, marker := range HubMarkers {
		t.Run(marker, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"repositories", "blobs"} {
				if err := os.MkdirAll(filepath.Join(root, "storage", "docker", "registry", "v2", d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(root, marker), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := CheckNotHub(root); !errors.Is(err, ErrHubRoot) || !strings.Contains(err.Error(), "--allow-hub-root") {
				t.Fatalf("CheckNotHub: %v, want ErrHubRoot naming --allow-hub-root", err)
			}
			if _, err := GC(ctx, root, GCOptions{}); !errors.Is(err, ErrHubRoot) {
				t.Fatalf("GC: %v, want ErrHubRoot", err)
			}
			l, err := LockServed(root, "skiff hub serve --root "+root)
			if err != nil {
				t.Fatal(err)
			}
			l2, err := LockServed(root, "skiff hub serve --root "+root)
			if err != nil {
				t.Fatalf("a second shared hold (replica): %v", err)
			}
			if _, err := GC(ctx, root, GCOptions{AllowHubRoot: true}); !errors.Is(err, ErrServing) || !strings.Contains(err.Error(), "stop every `skiff hub serve`") {
				t.Fatalf("GC under a hub's hold: %v, want ErrServing naming the fix", err)
			}
			if s, err := New(t.Context(), Options{RootDir: root, Addr: "127.0.0.1:0"}); !errors.Is(err, ErrServing) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("registry serve under a hub's hold: %v, want ErrServing", err)
			}
			l.Release()
			if _, err := GC(ctx, root, GCOptions{AllowHubRoot: true}); !errors.Is(err, ErrServing) {
				t.Fatalf("GC while one replica still holds: %v, want ErrServing", err)
			}
			l2.Release()
			if _, err := GC(ctx, root, GCOptions{AllowHubRoot: true}); err != nil {
				t.Fatalf("GC --allow-hub-root on a stopped hub's root: %v", err)
			}
		})
	}
}
