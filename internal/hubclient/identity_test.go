package hubclient_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// code returns the current TOTP code of secret on th's clock.
func (th *testHub) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := hub.TOTPCode(secret, hub.TOTPStep(th.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMFAReenrolAndReset: enrolling a new MFA device needs the password
// and the current code, not a token alone; a site administrator resets
// MFA for a lost device, which also revokes the user's tokens.
func TestMFAReenrolAndReset(t *testing.T) {
	th := newTestHub(t, hub.Options{})
	ctx := th.ctx
	bob := th.client(t, "bob")
	if _, err := bob.EnrollMFA(ctx, "", ""); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("enrolling with a token alone: %v, want unauthorized", err)
	}
	e, err := bob.EnrollMFA(ctx, password, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.ConfirmMFA(ctx, th.code(t, e.Secret)); err != nil {
		t.Fatal(err)
	}
	th.clock.Add(30 * time.Second)
	// Re-enrolling (a thief with bob's token and password) needs the code.
	if _, err := bob.EnrollMFA(ctx, password, ""); !errors.Is(err, hub.ErrOTPRequired) {
		t.Fatalf("re-enrolling without a code: %v, want otp required", err)
	}
	if _, err := bob.EnrollMFA(ctx, "wrong-password", th.code(t, e.Secret)); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("re-enrolling with a wrong password: %v", err)
	}
	e2, err := bob.EnrollMFA(ctx, password, th.code(t, e.Secret))
	if err != nil {
		t.Fatalf("re-enrolling with password and code: %v", err)
	}
	if e2.Secret == e.Secret {
		t.Fatal("the same secret again")
	}
	// Lost device: only a site administrator resets it.
	if err := bob.ResetMFA(ctx, "bob"); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("bob resetting his own MFA: %v", err)
	}
	if err := th.client(t, "root").ResetMFA(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("bob's token after the MFA reset: %v", err)
	}
	if _, err := th.anon(t).Login(ctx, "bob", password, "", 0); err != nil {
		t.Fatalf("login after the reset, without a code: %v", err)
	}
	th.wantAudit(t, hub.ActionMFAEnroll, hub.ActionMFAReset)
}

// wantAudit fails unless the audit log holds each action.
func (th *testHub) wantAudit(t *testing.T, actions ...string) {
	t.Helper()
	es, err := th.hub.Store().AuditLog(th.ctx, hub.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		seen[e.Action] = true
	}
	for _, a := range actions {
		if !seen[a] {
			t.Errorf("no %s entry in the audit log", a)
		}
	}
}

// TestTokensAndAccounts: logout revokes the token; tokens are listed and
// revoked; the hub bounds their lifetime; users are disabled, enabled
// and removed; passwords changed and reset; site administration and
// group membership taken away. All audited.
func TestTokensAndAccounts(t *testing.T) {
	th := newTestHub(t, hub.Options{MaxTokenTTL: 48 * time.Hour})
	ctx := th.ctx
	anon := th.anon(t)
	root := th.client(t, "root")

	// Logout revokes the token on the hub.
	alice := th.client(t, "alice")
	if err := alice.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("token after logout: %v", err)
	}

	// The hub's maximum lifetime bounds logins and created tokens.
	alice = th.client(t, "alice")
	limit := th.clock.Now().Add(48*time.Hour + time.Second)
	long, err := alice.CreateToken(ctx, "ci", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	login, err := anon.Login(ctx, "alice", password, "", 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if long.Expires.After(limit) || login.Expires.After(limit) {
		t.Fatalf("tokens expire %s and %s, beyond the hub's 48h", long.Expires, login.Expires)
	}

	// Tokens are listed (no secrets) and revoked, by their user or a
	// site administrator, not by others.
	ts, err := alice.Tokens(ctx, "")
	if err != nil || len(ts) != 3 {
		t.Fatalf("alice's tokens: %v %+v", err, ts)
	}
	var ci hub.TokenInfo
	for _, tk := range ts {
		if tk.Name == "ci" {
			ci = tk
		}
	}
	if ci.Kind != hub.TokenAPI || ci.ID == 0 {
		t.Fatalf("the ci token: %+v", ci)
	}
	if _, err := th.client(t, "carol").Tokens(ctx, "alice"); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("carol listing alice's tokens: %v", err)
	}
	if err := th.client(t, "carol").RevokeToken(ctx, ci.ID); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("carol revoking alice's token: %v", err)
	}
	ciClient, _ := hubclient.New(th.host, hubclient.Options{Username: "alice", Token: long.Secret})
	if _, err := ciClient.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.RevokeToken(ctx, ci.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ciClient.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if all, err := root.Tokens(ctx, "*"); err != nil || len(all) < 3 {
		t.Fatalf("all tokens: %v %d", err, len(all))
	}

	// Disabled users cannot log in and their tokens stop working.
	carol := th.client(t, "carol")
	yes, no := true, false
	if _, err := root.UpdateUser(ctx, "carol", hub.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("a disabled user's token: %v", err)
	}
	if _, err := anon.Login(ctx, "carol", password, "", 0); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("a disabled user's login: %v", err)
	}
	if got := rawGet(t, th, "/v2/", "carol", password); got != 401 {
		t.Fatalf("a disabled user's registry login: %d", got)
	}
	if _, err := root.UpdateUser(ctx, "carol", hub.UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	carol = th.client(t, "carol")

	// Site administration is given and taken away; the last one stays.
	if _, err := root.UpdateUser(ctx, "alice", hub.UserUpdate{Admin: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UpdateUser(ctx, "carol", hub.UserUpdate{Disabled: &no}); err != nil {
		t.Fatalf("alice as site administrator: %v", err)
	}
	if _, err := root.UpdateUser(ctx, "alice", hub.UserUpdate{Admin: &no, Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.UpdateUser(ctx, "carol", hub.UserUpdate{Disabled: &no}); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("alice after losing site administration: %v", err)
	}
	if _, err := root.UpdateUser(ctx, "root", hub.UserUpdate{Admin: &no}); !errors.Is(err, hub.ErrConflict) {
		t.Fatalf("demoting the last site administrator: %v", err)
	}
	if err := root.RemoveUser(ctx, "root"); !errors.Is(err, hub.ErrConflict) {
		t.Fatalf("removing the last site administrator: %v", err)
	}

	// Password change: needs the current one; the other tokens go.
	other := th.client(t, "alice")
	if err := alice.ChangePassword(ctx, "wrong-password", "", "new-password-1"); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("change with a wrong current password: %v", err)
	}
	if err := alice.ChangePassword(ctx, password, "", "new-password-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Whoami(ctx); err != nil {
		t.Fatalf("the changing token: %v", err)
	}
	if _, err := other.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("another token after a password change: %v", err)
	}
	if _, err := anon.Login(ctx, "alice", password, "", 0); err == nil {
		t.Fatal("the old password still logs in")
	}
	if _, err := anon.Login(ctx, "alice", "new-password-1", "", 0); err != nil {
		t.Fatal(err)
	}

	// Password reset by a site administrator: generated, tokens revoked.
	if _, err := carol.ResetPassword(ctx, "dave", ""); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("carol resetting a password: %v", err)
	}
	pw, err := root.ResetPassword(ctx, "carol", "")
	if err != nil || len(pw) < 16 {
		t.Fatalf("reset: %q %v", pw, err)
	}
	if _, err := carol.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("carol's token after the reset: %v", err)
	}
	if _, err := anon.Login(ctx, "carol", pw, "", 0); err != nil {
		t.Fatal(err)
	}

	// Group membership is taken away.
	st := th.hub.Store()
	if err := root.AddGroupMember(ctx, "ops", "dave"); err != nil {
		t.Fatal(err)
	}
	if err := root.Grant(ctx, "shop", "group:ops", "write"); err != nil {
		t.Fatal(err)
	}
	if l, _ := st.Level(ctx, "dave", "shop"); l != hub.LevelWrite {
		t.Fatalf("dave in ops: %v", l)
	}
	if err := root.RemoveGroupMember(ctx, "ops", "dave"); err != nil {
		t.Fatal(err)
	}
	if l, _ := st.Level(ctx, "dave", "shop"); l != hub.LevelNone {
		t.Fatalf("dave out of ops: %v", l)
	}

	// Removed users are gone with their tokens and grants.
	dave := th.client(t, "dave")
	if err := root.Grant(ctx, "shop", "dave", "read"); err != nil {
		t.Fatal(err)
	}
	if err := root.RemoveUser(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Whoami(ctx); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("a removed user's token: %v", err)
	}
	if gs, _ := st.Grants(ctx, "shop"); len(gs) != 1 {
		t.Fatalf("grants after removing dave: %+v", gs)
	}
	th.wantAudit(t, hub.ActionLogout, hub.ActionTokenRevoke, hub.ActionUserUpdate, hub.ActionUserRemove,
		hub.ActionPasswordChange, hub.ActionPasswordReset, hub.ActionGroupRemove)
}
