package hubclient_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/oci"
)

// publish pushes an archive as alice and has bob approve it.
func publish(t *testing.T, th *testHub, name string, seed uint64) string {
	t.Helper()
	archive := hubtest.Archive(t, t.TempDir(), name, "1.0.0", seed, th.key)
	if _, err := th.client(t, "alice").Push(th.ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	if p, err := th.client(t, "bob").Approve(th.ctx, "acme", name, "1.0.0", ""); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("approve: %v %+v", err, p)
	}
	return archive
}

func TestPullResumesAfterInterruption(t *testing.T) {
	th := newTestHub(t, hub.Options{})
	archive := publish(t, th, "app", 3)
	carol := th.client(t, "carol")
	dir := t.TempDir()
	out := filepath.Join(dir, "app.skiff")
	stage := filepath.Join(dir, "stage")

	// The first pull is cancelled after three blobs.
	ctx, cancel := context.WithCancel(th.ctx)
	defer cancel()
	done := 0
	_, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{
		Concurrency: 1,
		StagingDir:  stage,
		Transfer: func(e oci.Event) {
			if e.Kind == oci.BlobDone {
				if done++; done == 3 {
					cancel()
				}
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pull: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted pull left %s: %v", out, err)
	}
	if ents, _ := os.ReadDir(stage); len(ents) != 1 {
		t.Fatalf("staging directories after the interruption: %d, want 1", len(ents))
	}

	// The second fetches only what the first did not.
	skipped := 0
	res, err := carol.Pull(th.ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{
		StagingDir: stage,
		Transfer: func(e oci.Event) {
			if e.Kind == oci.BlobSkipped {
				skipped++
			}
		},
	})
	if err != nil {
		t.Fatalf("resumed pull: %v", err)
	}
	if res.Fetched >= res.Write.Blobs || res.Fetched+done < res.Write.Blobs || skipped == 0 {
		t.Fatalf("resumed pull fetched %d of %d blobs (%d fetched before, %d skipped)", res.Fetched, res.Write.Blobs, done, skipped)
	}
	want, _ := os.ReadFile(archive)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(want, got) {
		t.Fatalf("resumed pull differs from the pushed archive (%d vs %d bytes): %v", len(got), len(want), err)
	}
	if ents, _ := os.ReadDir(stage); len(ents) != 0 {
		t.Fatalf("the staging directory was left after a successful pull: %v", ents)
	}

	// An uninterrupted pull fetches everything.
	out2 := filepath.Join(dir, "again.skiff")
	res, err = carol.Pull(th.ctx, "acme", "app", "1.0.0", out2, hubclient.PullOptions{StagingDir: stage})
	if err != nil || res.Fetched != res.Write.Blobs {
		t.Fatalf("fresh pull: %v, fetched %+v", err, res)
	}
}

func TestAuditFailureRefusesChanges(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testAuditFailureRefusesChanges(t, b.URL) })
	}
}

// breakAudit makes every append to the audit log fail, with a trigger,
// until the returned function repairs it.
func breakAudit(t *testing.T, th *testHub, dbURL string) (repair func()) {
	t.Helper()
	driver, dsn := "sqlite", "file:"+filepath.Join(th.root, hub.DatabaseFile)+"?_pragma=busy_timeout(10000)"
	create := []string{`CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit disk full'); END`}
	drop := []string{`DROP TRIGGER audit_broken`}
	if dbURL != "" {
		driver, dsn = "pgx", dbURL
		create = []string{
			`CREATE OR REPLACE FUNCTION audit_broken() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit disk full'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER audit_broken BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_broken()`,
		}
		drop = []string{`DROP TRIGGER audit_broken ON audit`}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range create {
		if _, err := db.ExecContext(th.ctx, q); err != nil {
			t.Fatalf("breaking the audit log: %v", err)
		}
	}
	return func() {
		t.Helper()
		for _, q := range drop {
			if _, err := db.ExecContext(th.ctx, q); err != nil {
				t.Fatalf("repairing the audit log: %v", err)
			}
		}
	}
}

func testAuditFailureRefusesChanges(t *testing.T, dbURL string) {
	dbURL = hubtest.FreshSchema(t, dbURL)
	th := newTestHub(t, hub.Options{DatabaseURL: dbURL})
	ctx := th.ctx
	archive := hubtest.Archive(t, t.TempDir(), "app", "1.0.0", 5, th.key)
	alice, bob, carol, root := th.client(t, "alice"), th.client(t, "bob"), th.client(t, "carol"), th.client(t, "root")
	if _, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	st := th.hub.Store()
	before, _ := st.AuditLog(ctx, hub.AuditQuery{Limit: 1000})

	refused := func(what string, err error) {
		t.Helper()
		var he *hubclient.Error
		if !errors.Is(err, hub.ErrAuditFailed) || !errors.As(err, &he) || he.Status != http.StatusInternalServerError || !strings.Contains(err.Error(), "was not made") {
			t.Fatalf("%s with a broken audit log: %v, want a 500 audit failure", what, err)
		}
	}
	repair := breakAudit(t, th, dbURL)
	_, err := bob.Approve(ctx, "acme", "app", "1.0.0", "ok")
	refused("approve", err)
	p, err := st.Package(ctx, "acme", "app", "1.0.0")
	if err != nil || p.Status != hub.StatusPending || len(p.Approvals) != 0 {
		t.Fatalf("after a refused approval: %v %+v, want pending without approvals", err, p)
	}
	refused("grant", root.Grant(ctx, "acme", "dave", "read"))
	if l, _ := st.Level(ctx, "dave", "acme"); l != hub.LevelNone {
		t.Fatalf("a refused grant gave dave %v", l)
	}
	_, err = root.AddUser(ctx, "erin", "", false)
	refused("user add", err)
	if _, err := st.User(ctx, "erin"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("a refused user add created erin: %v", err)
	}
	_, err = carol.CreateToken(ctx, "ci", time.Hour)
	refused("token create", err)
	repair()

	if p, err := bob.Approve(ctx, "acme", "app", "1.0.0", "ok"); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("approve after the repair: %v %+v", err, p)
	}

	// An approved package is neither removed nor pulled off the record.
	repair = breakAudit(t, th, dbURL)
	_, err = bob.Remove(ctx, "acme", "app", "1.0.0")
	refused("remove", err)
	out := filepath.Join(t.TempDir(), "app.skiff")
	if _, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{StagingDir: t.TempDir()}); err == nil {
		t.Fatal("pulled with a broken audit log")
	}
	repair()
	if p, err := st.Package(ctx, "acme", "app", "1.0.0"); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("after a refused removal: %v %+v", err, p)
	}
	after, _ := st.AuditLog(ctx, hub.AuditQuery{Limit: 1000})
	var actions []string
	for _, e := range after[len(before):] {
		actions = append(actions, e.Action)
	}
	// Only the approval: nothing refused was recorded.
	if got := strings.Join(actions, " "); got != "approve" {
		t.Fatalf("audit entries since the push: %q", got)
	}
	if _, err := st.VerifyAudit(ctx); err != nil {
		t.Fatalf("audit log: %v", err)
	}
}
