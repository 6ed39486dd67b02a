package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
)

const password = uiPassword

// replica is one hub instance of a replicated hub.
type replica struct {
	hub  *hub.Hub
	host string
}

// TestReplicas runs two hubs on one PostgreSQL database and one storage
// directory, behind two servers, and spreads concurrent logins, pushes,
// approvals (two reviewers approving each package at once, on different
// replicas) and pulls over both: every package ends approved and pulls
// byte-identical, and the audit log is one unbroken chain with exactly
// one entry per audited event.
func TestReplicas(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	dbURL := hubtest.Postgres(t)
	root := t.TempDir()
	key, trustDir := hubtest.TrustedKey(t)

	// Both replicas start at once: the schema is migrated once.
	reps := make([]replica, 2)
	var g errgroup.Group
	for i := range reps {
		g.Go(func() error {
			h, err := hub.New(ctx, hub.Options{Root: root, DatabaseURL: dbURL, TrustDir: trustDir, Approvals: 2})
			if err != nil {
				return err
			}
			reps[i] = replica{hub: h, host: hubtest.Serve(t, h)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("starting the replicas: %v", err)
	}
	st := reps[0].hub.Store()
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if err := st.AddUser(ctx, u, password, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, gr := range []struct {
		user  string
		level hub.Level
	}{{"alice", hub.LevelWrite}, {"bob", hub.LevelAdmin}, {"carol", hub.LevelAdmin}, {"dave", hub.LevelRead}} {
		if err := st.Grant(ctx, "acme", gr.user, gr.level); err != nil {
			t.Fatal(err)
		}
	}
	base, err := st.AuditLog(ctx, hub.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		logins int
	)
	login := func(r replica, user string) (*hubclient.Client, error) {
		anon, err := hubclient.New(r.host, hubclient.Options{})
		if err != nil {
			return nil, err
		}
		tok, err := anon.Login(ctx, user, password, "", 0)
		if err != nil {
			return nil, fmt.Errorf("login %s on %s: %w", user, r.host, err)
		}
		mu.Lock()
		logins++
		mu.Unlock()
		return hubclient.New(r.host, hubclient.Options{Username: user, Token: tok.Secret})
	}

	const packages = 6

	dir := t.TempDir()
	archives := make([]string, packages)
	for i := range archives {
		archives[i] = hubtest.Archive(t, dir, fmt.Sprintf("app%d", i), "1.0.0", uint64(i), key)
	}
	g = errgroup.Group{}
	g.SetLimit(4)
	for i := range packages {
		g.Go(func() error {
			name := fmt.Sprintf("app%d", i)
			alice, err := login(reps[i%2], "alice")
			if err != nil {
				return err
			}
			res, err := alice.Push(ctx, archives[i], "acme", hubclient.PushOptions{})
			if err != nil {
				return fmt.Errorf("push %s: %w", name, err)
			}
			if res.Package.Status != hub.StatusPending {
				return fmt.Errorf("push %s: %s, want pending: %+v", name, res.Package.Status, res.Package.Gates)
			}
			// Two reviewers approve at once, each on another replica.
			var ag errgroup.Group
			for j, reviewer := range []string{"bob", "carol"} {
				ag.Go(func() error {
					c, err := login(reps[(i+j)%2], reviewer)
					if err != nil {
						return err
					}
					if _, err := c.Approve(ctx, "acme", name, "1.0.0", "ok"); err != nil {
						return fmt.Errorf("%s approving %s: %w", reviewer, name, err)
					}
					return nil
				})
			}
			if err := ag.Wait(); err != nil {
				return err
			}
			dave, err := login(reps[(i+1)%2], "dave")
			if err != nil {
				return err
			}
			out := filepath.Join(dir, name+".pulled.skiff")
			if _, err := dave.Pull(ctx, "acme", name, "1.0.0", out, hubclient.PullOptions{}); err != nil {
				return fmt.Errorf("pull %s: %w", name, err)
			}
			want, _ := os.ReadFile(archives[i])
			got, _ := os.ReadFile(out)
			if !bytes.Equal(got, want) {
				return fmt.Errorf("pull %s: %d bytes differ from the %d pushed", name, len(got), len(want))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	for i := range packages {
		p, err := st.Package(ctx, "acme", fmt.Sprintf("app%d", i), "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != hub.StatusApproved || len(p.Approvals) != 2 {
			t.Errorf("%s: %s with %d approval(s), want approved with 2", p.Ref(), p.Status, len(p.Approvals))
		}
	}
	for _, r := range reps {
		rep, err := r.hub.Store().VerifyAudit(ctx)
		if err != nil {
			t.Fatalf("audit verify on %s: %v (%+v)", r.host, err, rep)
		}
	}
	entries, err := st.AuditLog(ctx, hub.AuditQuery{After: int64(len(base)), Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	approvals := map[string][]int{}
	for _, e := range entries {
		count[e.Action]++
		if e.Action == hub.ActionApprove {
			var d struct{ Approvals int }
			json.Unmarshal([]byte(e.Details), &d)
			approvals[e.Target] = append(approvals[e.Target], d.Approvals)
		}
	}
	want := map[string]int{
		hub.ActionLogin:   logins,
		hub.ActionPush:    packages,
		hub.ActionSubmit:  packages,
		hub.ActionApprove: 2 * packages,
		// hubclient.Pull GETs the root manifest once (copying the graph
		// into its staging layout); each GET of an approved root is
		// audited.
		hub.ActionPull: packages,
	}
	total := 0
	for action, n := range want {
		total += n
		if count[action] != n {
			t.Errorf("%d %s entries, want %d", count[action], action, n)
		}
	}
	if len(entries) != total {
		t.Errorf("%d audit entries, want %d (%v)", len(entries), total, count)
	}
	// Each package's two approvals were counted one after the other.
	for target, ns := range approvals {
		if len(ns) != 2 || ns[0]+ns[1] != 3 {
			t.Errorf("%s: approvals counted %v, want 1 and 2", target, ns)
		}
	}
	t.Logf("%d replicas, %d packages, %d logins: %d audit entries %v", len(reps), packages, logins, len(entries), count)
}

// TestReplicasShareUploads starts a blob upload on one replica and
// finishes it on the other: both sign upload state with the secret they
// share through the database.
func TestReplicasShareUploads(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	dbURL := hubtest.Postgres(t)
	root := t.TempDir()
	var hosts []string
	var first *hub.Hub
	for range 2 {
		h, err := hub.New(ctx, hub.Options{Root: root, DatabaseURL: dbURL, AllowUnsigned: true})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, hubtest.Serve(t, h))
		if first == nil {
			first = h
		}
	}
	if err := first.Store().AddUser(ctx, "alice", password, false); err != nil {
		t.Fatal(err)
	}
	if err := first.Store().Grant(ctx, "acme", "alice", hub.LevelWrite); err != nil {
		t.Fatal(err)
	}
	do := func(method, u string, body []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		req.SetBasicAuth("alice", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := do(http.MethodPost, "http://"+hosts[0]+"/v2/acme/blob/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a blob uploaded through two replicas")
	dg := digest.FromBytes(data)
	loc.Scheme, loc.Host = "http", hosts[1]
	q := loc.Query()
	q.Set("digest", dg.String())
	loc.RawQuery = q.Encode()
	if resp := do(http.MethodPut, loc.String(), data); resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing on the other replica: %s", resp.Status)
	}
	if resp := do(http.MethodHead, "http://"+hosts[0]+"/v2/acme/blob/blobs/"+dg.String(), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the blob on the first replica: %s", resp.Status)
	}
}
