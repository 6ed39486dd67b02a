package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sign"
)

// failingUntag is a repository of the hub's storage whose tag deletion
// fails, as a storage that is down or read-only would.
type failingUntag struct {
	storedRepo
	err error
}

func (f failingUntag) Untag(context.Context, string) error { return f.err }

// TestRemoveReportsStorageFailure: when the tag of a removed package
// cannot be deleted from storage, the removal still takes effect
// (readers no longer see the package, and it is audited), the failure is
// returned to the caller with its cause and audited as remove.failed,
// and removing again deletes the tag.
func TestRemoveReportsStorageFailure(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testRemoveReportsStorageFailure(t, hubtest.FreshSchema(t, b.URL)) })
	}
}

// testHub is a hub served on 127.0.0.1 with users alice (write on
// acme), bob (admin of acme) and carol (read on acme).
type testHub struct {
	h    *Hub
	root string
	host string
	key  *sign.PrivateKey
}

const testPassword = "correct horse battery"

func newTestHub(t *testing.T, dbURL string) *testHub {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, trustDir := hubtest.TrustedKey(t)
	root := t.TempDir()
	h, err := New(ctx, Options{Root: root, DatabaseURL: dbURL, TrustDir: trustDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, u := range []struct {
		name  string
		level Level
	}{{"alice", LevelWrite}, {"bob", LevelAdmin}, {"carol", LevelRead}} {
		if err := h.store.AddUser(ctx, u.name, testPassword, false); err != nil {
			t.Fatal(err)
		}
		if err := h.store.Grant(ctx, "acme", u.name, u.level); err != nil {
			t.Fatal(err)
		}
	}
	return &testHub{h: h, root: root, host: hubtest.Serve(t, h), key: key}
}

// client logs user in.
func (th *testHub) client(t *testing.T, user string) *hubclient.Client {
	t.Helper()
	anon, err := hubclient.New(th.host, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(context.Background(), user, testPassword, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := hubclient.New(th.host, hubclient.Options{Username: user, Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testRemoveReportsStorageFailure(t *testing.T, dbURL string) {
	ctx := context.Background()
	th := newTestHub(t, dbURL)
	h, root, key := th.h, th.root, th.key
	client := func(user string) *hubclient.Client { return th.client(t, user) }
	alice, bob, carol := client("alice"), client("bob"), client("carol")
	archive := hubtest.Archive(t, t.TempDir(), "app", "1.0.0", 1, key)
	if _, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, err := bob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil || p.Status != StatusApproved {
		t.Fatalf("approve: %v %+v", err, p)
	}
	tag := filepath.Join(root, "storage", "docker", "registry", "v2", "repositories", "acme", "app", "_manifests", "tags", "1.0.0")
	if _, err := os.Stat(tag); err != nil {
		t.Fatalf("the approved version has no tag: %v", err)
	}

	errDown := errors.New("the storage is down")
	h.wrapRepo = func(r storedRepo) storedRepo { return failingUntag{r, errDown} }

	// Called directly, the cause is wrapped.
	_, err := h.Remove(ctx, "acme", "app", "1.0.0", "bob")
	var re *RemoveError
	if !errors.Is(err, errDown) || !errors.As(err, &re) || re.Package != "acme/app:1.0.0" {
		t.Fatalf("remove with the storage down: %v, want a *RemoveError wrapping the cause", err)
	}
	// Through the API, the client is told what happened and what to do.
	_, err = bob.Remove(ctx, "acme", "app", "1.0.0")
	if err == nil || !strings.Contains(err.Error(), "acme/app:1.0.0 is removed") || !strings.Contains(err.Error(), "skiff hub remove again") {
		t.Fatalf("remove through the API with the storage down: %v", err)
	}
	if strings.Contains(err.Error(), errDown.Error()) {
		t.Errorf("the API answer shows the storage's error to the client: %v", err)
	}

	// The removal took effect and is audited, with the failure.
	p, err := h.store.Package(ctx, "acme", "app", "1.0.0")
	if err != nil || p.Status != StatusRemoved {
		t.Fatalf("after the failed tag deletion: %v %+v, want removed", err, p)
	}
	if _, err := carol.Pull(ctx, "acme", "app", "1.0.0", filepath.Join(t.TempDir(), "out.skiff"), hubclient.PullOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a reader pulling the removed package: %v, want not found", err)
	}
	entries, err := h.store.AuditLog(ctx, AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Target == "acme/app:1.0.0" && strings.HasPrefix(e.Action, "remove") {
			actions = append(actions, e.Action)
			if e.Action == ActionRemoveFailed && !strings.Contains(e.Details, errDown.Error()) {
				t.Errorf("the %s entry does not say why: %s", e.Action, e.Details)
			}
		}
	}
	if got := strings.Join(actions, " "); got != "remove remove.failed remove remove.failed" {
		t.Errorf("audited %q, want each removal and its failure", got)
	}
	if _, err := os.Stat(tag); err != nil {
		t.Fatalf("the tag is gone although its deletion failed: %v", err)
	}

	// Once the storage works, removing again deletes the tag.
	h.wrapRepo = nil
	if p, err := bob.Remove(ctx, "acme", "app", "1.0.0"); err != nil || p.Status != StatusRemoved {
		t.Fatalf("remove again: %v %+v", err, p)
	}
	if _, err := os.Stat(tag); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the tag stayed: %v", err)
	}
	// A tag already gone is no error.
	if _, err := h.Remove(ctx, "acme", "app", "1.0.0", "bob"); err != nil {
		t.Fatalf("removing a removed package: %v", err)
	}
	if rep, err := h.store.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}
