package hubclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/sign"
)

// rawGet sends a registry request with optional basic credentials and
// returns the status.
func rawGet(t *testing.T, th *testHub, path, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+th.host+path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPublishReviewPull(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testPublishReviewPull(t, b.URL) })
	}
}

func testPublishReviewPull(t *testing.T, dbURL string) {
	th := newTestHub(t, hub.Options{DatabaseURL: hubtest.FreshSchema(t, dbURL)})
	ctx := th.ctx
	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "app", "1.0.0", 1, th.key)
	alice, bob, carol, dave := th.client(t, "alice"), th.client(t, "bob"), th.client(t, "carol"), th.client(t, "dave")

	// A reader cannot push.
	if _, err := carol.Push(ctx, archive, "acme", hubclient.PushOptions{}); err == nil {
		t.Fatal("carol (read) pushed")
	}
	res, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	p := res.Package
	if p.Status != hub.StatusPending {
		t.Fatalf("after push: status %s, gates %+v; want pending", p.Status, p.Gates)
	}
	if len(p.Gates) != 2 || !p.Gates[0].Passed || !p.Gates[1].Passed || len(p.Signatures) != 1 {
		t.Fatalf("gates %+v signatures %v", p.Gates, p.Signatures)
	}
	a, _ := bundle.Open(archive)
	root := a.Root()
	a.Close()
	if p.Digest != root.Digest.String() {
		t.Fatalf("recorded digest %s, archive root %s", p.Digest, root.Digest)
	}

	// Not approved: readers get 404 everywhere; writers cannot GET the root.
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("pull of a pending package: %v, want not found", err)
	}
	for _, c := range []struct {
		path, user string
		want       int
	}{
		{"/v2/acme/app/manifests/1.0.0", "", http.StatusUnauthorized},
		{"/v2/acme/app/manifests/1.0.0", "carol", http.StatusNotFound},
		{"/v2/acme/app/manifests/" + p.Digest, "carol", http.StatusNotFound},
		{"/v2/acme/app/manifests/1.0.0", "alice", http.StatusNotFound},
		{"/v2/acme/app/manifests/1.0.0", "dave", http.StatusForbidden},
		{"/v2/acme/app/tags/list", "dave", http.StatusForbidden},
		{"/v2/", "", http.StatusUnauthorized},
		{"/v2/", "carol", http.StatusOK},
	} {
		if got := rawGet(t, th, c.path, c.user, password); got != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.user, got, c.want)
		}
	}

	// Reviews: a writer cannot approve; the uploader cannot approve their own.
	if _, err := alice.Approve(ctx, "acme", "app", "1.0.0", ""); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("alice approving: %v, want forbidden", err)
	}
	if err := th.hub.Store().Grant(ctx, "acme", "alice", hub.LevelAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Approve(ctx, "acme", "app", "1.0.0", ""); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("uploader approving: %v, want forbidden", err)
	}
	if p, err = bob.Approve(ctx, "acme", "app", "1.0.0", "looks good"); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("bob approving: %v %+v", err, p)
	}

	// Pushing the same package again changes nothing.
	if res, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil || res.Package.Status != hub.StatusApproved || res.Push.BlobsPushed != 0 {
		t.Fatalf("re-push: %v %+v", err, res)
	}

	// Approved: readers pull a byte-identical archive whose signature verifies.
	r, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(want, got) {
		t.Fatalf("pulled archive differs from the pushed one (%d vs %d bytes)", len(got), len(want))
	}
	if _, err := bundle.Verify(ctx, out, bundle.VerifyOptions{}); err != nil {
		t.Fatalf("verify pulled: %v", err)
	}
	pub, _ := sign.MarshalPublicKey(th.key.Public())
	tdir := t.TempDir()
	sign.AddTrusted(tdir, pub, "k")
	trust, _ := sign.LoadTrust(tdir)
	pkg, err := install.Open(ctx, out, bundle.OpenOptions{Trust: trust})
	if err != nil {
		t.Fatalf("install.Open of the pulled archive: %v", err)
	}
	if pkg.Description.Name != "app" || len(pkg.SignedBy) != 1 {
		t.Fatalf("opened %+v", pkg.Description)
	}
	pkg.Close()
	if r.Package.Status != hub.StatusApproved {
		t.Fatal(r.Package.Status)
	}
	for _, c := range []struct {
		path, user string
		want       int
	}{
		{"/v2/acme/app/manifests/1.0.0", "carol", http.StatusOK},
		{"/v2/acme/app/manifests/" + p.Digest, "carol", http.StatusOK},
		{"/v2/acme/app/tags/list", "carol", http.StatusOK},
	} {
		if got := rawGet(t, th, c.path, c.user, password); got != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.user, got, c.want)
		}
	}

	// Search: readers see it, strangers do not.
	if ps, err := carol.Search(ctx, hubclient.SearchOptions{Query: "app"}); err != nil || len(ps) != 1 {
		t.Fatalf("carol search: %v %v", err, ps)
	}
	if ps, err := dave.Search(ctx, hubclient.SearchOptions{}); err != nil || len(ps) != 0 {
		t.Fatalf("dave search: %v %v", err, ps)
	}

	// Versions are immutable once published.
	other := hubtest.Archive(t, t.TempDir(), "app", "1.0.0", 2, th.key)
	if _, err := alice.Push(ctx, other, "acme", hubclient.PushOptions{}); err == nil {
		t.Fatal("re-pushing a published version with other content succeeded")
	}

	// Removal hides it again.
	if _, err := bob.Remove(ctx, "acme", "app", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("pull after removal: %v", err)
	}
	if got := rawGet(t, th, "/v2/acme/app/manifests/"+p.Digest, "carol", password); got != http.StatusNotFound {
		t.Fatalf("GET removed root: %d", got)
	}

	// The audit log recorded all this and verifies.
	rep, err := th.client(t, "root").VerifyAudit(ctx)
	if err != nil || !rep.OK || rep.Entries < 8 {
		t.Fatalf("audit: %v %+v", err, rep)
	}
}

func TestGates(t *testing.T) {
	var gated []string
	th := newTestHub(t, hub.Options{Gates: []hub.Gate{{Name: "vulnerabilities", Check: func(_ context.Context, c *hub.Candidate) error {
		gated = append(gated, c.Description.Name)
		if c.Description.Name == "vuln" {
			return errors.New("CVE-2099-0001 (critical) in docker.io/library/app:1.0")
		}
		return nil
	}}}})
	ctx := th.ctx
	dir := t.TempDir()
	alice := th.client(t, "alice")
	for _, c := range []struct {
		name   string
		key    *sign.PrivateKey
		status string
		failed string
	}{
		{"unsigned", nil, hub.StatusRejected, hub.GateSignature},
		{"vuln", th.key, hub.StatusRejected, "vulnerabilities"},
		{"fine", th.key, hub.StatusPending, ""},
	} {
		res, err := alice.Push(ctx, hubtest.Archive(t, dir, c.name, "1.0.0", 3, c.key), "acme", hubclient.PushOptions{})
		if err != nil {
			t.Fatalf("%s: push: %v", c.name, err)
		}
		if res.Package.Status != c.status {
			t.Errorf("%s: status %s, want %s (%+v)", c.name, res.Package.Status, c.status, res.Package.Gates)
		}
		for _, g := range res.Package.Gates {
			if !g.Passed && g.Name != c.failed {
				t.Errorf("%s: gate %s failed: %s", c.name, g.Name, g.Message)
			}
		}
	}
	if len(gated) != 2 {
		t.Errorf("the custom gate ran for %v, want vuln and fine", gated)
	}
	// A rejected package cannot be approved.
	if _, err := th.client(t, "bob").Approve(ctx, "acme", "vuln", "1.0.0", ""); !errors.Is(err, hub.ErrConflict) {
		t.Errorf("approving a rejected package: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	th := newTestHub(t, hub.Options{TokenTTL: time.Hour})
	ctx := th.ctx
	anon := th.anon(t)

	// Expired tokens are refused.
	alice := th.client(t, "alice")
	if _, err := alice.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	th.clock.Add(2 * time.Hour)
	if _, err := alice.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("expired token: %v", err)
	}

	// Five failures lock user+address out for the window, even with the
	// right password.
	for i := range hub.LoginAttempts {
		if _, err := anon.Login(ctx, "carol", "wrong-password", "", 0); !errors.Is(err, hub.ErrUnauthorized) {
			t.Fatalf("bad login %d: %v", i, err)
		}
	}
	if _, err := anon.Login(ctx, "carol", password, "", 0); !errors.Is(err, hub.ErrRateLimited) {
		t.Fatalf("login while limited: %v", err)
	}
	if got := rawGet(t, th, "/v2/", "carol", password); got != http.StatusTooManyRequests {
		t.Fatalf("registry login while limited: %d", got)
	}
	if _, err := anon.Login(ctx, "dave", password, "", 0); err != nil {
		t.Fatalf("another user is not limited: %v", err)
	}
	th.clock.Add(hub.LoginWindow + time.Second)
	if _, err := anon.Login(ctx, "carol", password, "", 0); err != nil {
		t.Fatalf("login after the window: %v", err)
	}

	// MFA: enrol, confirm, then logins need a fresh code.
	bob := th.client(t, "bob")
	e, err := bob.EnrollMFA(ctx, password, "")
	if err != nil {
		t.Fatal(err)
	}
	code := func() string {
		c, err := hub.TOTPCode(e.Secret, hub.TOTPStep(th.clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := bob.ConfirmMFA(ctx, "000000"); err == nil && code() != "000000" {
		t.Fatal("confirmed with a wrong code")
	}
	if err := bob.ConfirmMFA(ctx, code()); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if _, err := anon.Login(ctx, "bob", password, "", 0); !errors.Is(err, hub.ErrOTPRequired) {
		t.Fatalf("login without code: %v", err)
	}
	// The confirming code was used: it cannot log in again (replay).
	if _, err := anon.Login(ctx, "bob", password, code(), 0); err == nil {
		t.Fatal("a used code logged in")
	}
	th.clock.Add(30 * time.Second)
	c := code()
	if _, err := anon.Login(ctx, "bob", password, c, 0); err != nil {
		t.Fatalf("login with code: %v", err)
	}
	if _, err := anon.Login(ctx, "bob", password, c, 0); err == nil {
		t.Fatal("replayed code logged in")
	}
	// Passwords alone no longer open the registry for bob.
	if got := rawGet(t, th, "/v2/", "bob", password); got != http.StatusUnauthorized {
		t.Fatalf("registry password login with MFA on: %d", got)
	}
}
