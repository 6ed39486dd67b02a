package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

// TestRegistryGCOnHubRoot: `skiff registry gc --root` on a hub's root
// is refused while the hub serves it (naming the hub, its pid and
// address, and what to do), even with --allow-hub-root, and `registry
// serve` on it too; nothing is deleted. Stopped, the sweep is refused
// without --allow-hub-root (nothing deleted); with it, it deletes only
// blobs no manifest refers to, and the hub still checks clean.
func TestRegistryGCOnHubRoot(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock on Windows")
	}
	if !slices.Contains(skregistry.HubMarkers, DatabaseFile) || !slices.Contains(skregistry.HubMarkers, auditHeadFile) {
		t.Fatalf("registry.HubMarkers = %v, want %s and %s", skregistry.HubMarkers, DatabaseFile, auditHeadFile)
	}
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testRegistryGCOnHubRoot(t, hubtest.FreshSchema(t, b.URL)) })
	}
}

func testRegistryGCOnHubRoot(t *testing.T, dbURL string) {
	ctx := context.Background()
	th := newTestHub(t, dbURL)
	alice, bob := th.client(t, "alice"), th.client(t, "bob")
	for _, name := range []string{"app", "other"} {
		archive := hubtest.Archive(t, t.TempDir(), name, "1.0.0", 7, th.key)
		if _, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// app approved, other left pending.
	if p, err := bob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil || p.Status != StatusApproved {
		t.Fatalf("approve: %v %+v", err, p)
	}
	// A blob no manifest refers to: what a sweep would delete.
	orphan := []byte("an unreferenced blob")
	sum := sha256.Sum256(orphan)
	hexSum := hex.EncodeToString(sum[:])
	orphanPath := filepath.Join(th.root, "storage", "docker", "registry", "v2", "blobs", "sha256", hexSum[:2], hexSum, "data")
	if err := os.MkdirAll(filepath.Dir(orphanPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphanPath, orphan, 0o644); err != nil {
		t.Fatal(err)
	}
	before := blobFiles(t, th.root)

	// The hub also serves on its own listener, which names its address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- th.h.Serve(sctx, ln, ServeOptions{}) }()
	lockFile := filepath.Join(th.root, skregistry.LockFile)
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(lockFile)
		if strings.Contains(string(b), ln.Addr().String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock file %s = %q, want the hub's address %s", lockFile, b, ln.Addr())
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, allow := range []bool{false, true} {
		_, err := skregistry.GC(ctx, th.root, skregistry.GCOptions{AllowHubRoot: allow})
		if !errors.Is(err, skregistry.ErrServing) {
			t.Fatalf("registry gc (allow-hub-root %v) while the hub serves: %v, want ErrServing", allow, err)
		}
		for _, want := range []string{"process " + strconv.Itoa(os.Getpid()), "skiff hub serve --root " + th.root, ln.Addr().String(), "stop every `skiff hub serve`"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("registry gc while the hub serves: %v\nwant it to name %q", err, want)
			}
		}
	}
	if err := skregistry.CheckNotServing(th.root); !errors.Is(err, skregistry.ErrServing) {
		t.Errorf("CheckNotServing while the hub serves: %v, want ErrServing", err)
	}
	if s, err := skregistry.New(ctx, skregistry.Options{RootDir: th.root, Addr: "127.0.0.1:0"}); !errors.Is(err, skregistry.ErrServing) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("registry serve on the hub's root: %v, want ErrServing", err)
	}
	// A replica on the same root (PostgreSQL) shares the hold.
	if dbURL != "" {
		r, err := New(ctx, Options{Root: th.root, DatabaseURL: dbURL})
		if err != nil {
			t.Fatalf("a replica on the served root: %v", err)
		}
		r.Close()
	}
	if got := blobFiles(t, th.root); !slices.Equal(got, before) {
		t.Fatalf("blobs changed while refused: %d before, %d after", len(before), len(got))
	}

	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	th.h.Close()

	// Stopped: refused as a hub's root unless allowed.
	if _, err := skregistry.GC(ctx, th.root, skregistry.GCOptions{}); !errors.Is(err, skregistry.ErrHubRoot) || !strings.Contains(err.Error(), "--allow-hub-root") {
		t.Fatalf("registry gc on a stopped hub's root: %v, want ErrHubRoot naming --allow-hub-root", err)
	}
	if got := blobFiles(t, th.root); !slices.Equal(got, before) {
		t.Fatalf("blobs changed while refused: %d before, %d after", len(before), len(got))
	}
	res, err := skregistry.GC(ctx, th.root, skregistry.GCOptions{AllowHubRoot: true})
	if err != nil {
		t.Fatalf("registry gc --allow-hub-root on a stopped hub: %v", err)
	}
	if res.BlobsBefore-res.BlobsAfter != 1 {
		t.Errorf("registry gc --allow-hub-root freed %d blobs, want 1 (the orphan)", res.BlobsBefore-res.BlobsAfter)
	}
	if _, err := os.Stat(orphanPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unreferenced blob survived the sweep: %v", err)
	}
	rep, err := Check(ctx, CheckOptions{Root: th.root, DatabaseURL: dbURL})
	if err != nil || !rep.OK || rep.Packages != 2 {
		t.Fatalf("hub check after the sweep: %v %+v, want 2 packages and no problem", err, rep)
	}
	// And the hub starts again.
	h, err := New(ctx, Options{Root: th.root, DatabaseURL: dbURL})
	if err != nil {
		t.Fatalf("hub after the sweep: %v", err)
	}
	h.Close()
}

// blobFiles lists the blob data files under a hub's storage.
func blobFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	dir := filepath.Join(root, "storage", "docker", "registry", "v2", "blobs")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
