package hubclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// syncBuffer is a bytes.Buffer safe for the hub's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecretsNeverRecorded plants unique markers in passwords (changed,
// reset by an administrator, reset to a generated one) and creates,
// lists and revokes a token; none of those secrets may show up in the
// hub's log, the audit log, a failed login's error or the token list.
func TestSecretsNeverRecorded(t *testing.T) {
	logs := &syncBuffer{}
	th := newTestHub(t, hub.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := th.ctx
	const changed, reset = "PLANTED-change-7f3a9c", "PLANTED-reset-2b8e41"
	secrets := []string{changed, reset}

	bob := th.client(t, "bob")
	if err := bob.ChangePassword(ctx, password, "", changed); err != nil {
		t.Fatal(err)
	}
	root := th.client(t, "root")
	if _, err := root.ResetPassword(ctx, "bob", reset); err != nil {
		t.Fatal(err)
	}
	generated, err := root.ResetPassword(ctx, "carol", "")
	if err != nil || generated == "" {
		t.Fatalf("generated password: %q %v", generated, err)
	}
	secrets = append(secrets, generated)

	tok, err := th.anon(t).Login(ctx, "bob", reset, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, tok.Secret)
	bob, err = hubclient.New(th.host, hubclient.Options{Username: "bob", Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	api, err := bob.CreateToken(ctx, "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, api.Secret)

	// The token list, as sent on the wire.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+th.host+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(list), `"ci"`) {
		t.Fatalf("token list: %d %s", resp.StatusCode, list)
	}
	if err := bob.RevokeToken(ctx, api.ID); err != nil {
		t.Fatal(err)
	}
	if err := root.ResetMFA(ctx, "bob"); err != nil {
		t.Fatal(err)
	}

	// Failed logins with the old (planted) password and a wrong one
	// containing a marker.
	var failures []string
	for _, pw := range []string{changed, reset + "x"} {
		if _, err := th.anon(t).Login(ctx, "bob", pw, "", 0); err == nil {
			t.Fatalf("login with %q succeeded", pw)
		} else {
			failures = append(failures, err.Error())
		}
	}

	audit, err := th.hub.Store().AuditLog(ctx, hub.AuditQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	auditJSON, _ := json.Marshal(audit)
	remote, err := root.Audit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	remoteJSON, _ := json.Marshal(remote)
	if !strings.Contains(string(auditJSON), hub.ActionPasswordReset) || !strings.Contains(string(auditJSON), hub.ActionPasswordChange) {
		t.Fatalf("audit log lacks the password entries: %s", auditJSON)
	}
	if !strings.Contains(logs.String(), "level=") {
		t.Log("the hub logged nothing")
	}

	places := map[string]string{
		"hub log":             logs.String(),
		"audit log (store)":   string(auditJSON),
		"audit log (API)":     string(remoteJSON),
		"failed login errors": strings.Join(failures, "\n"),
		"token list":          string(list),
	}
	for name, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q:\n%s", name, s, text)
			}
		}
		if strings.Contains(text, "PLANTED") {
			t.Errorf("%s holds a planted marker:\n%s", name, text)
		}
	}
}
