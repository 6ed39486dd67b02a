package hub_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// TestWebSessionCannotMintTokens: a web UI session's token (from the
// cookie) works on the API but cannot create long-lived API tokens.
func TestWebSessionCannotMintTokens(t *testing.T) {
	u := newUIHub(t, time.Now)
	f := newFormClient(t, u.url)
	if p := f.login("carol", ""); p.status != 303 {
		t.Fatalf("login: %d %s", p.status, p.body)
	}
	var secret string
	for _, c := range f.c.Jar.Cookies(mustURL(t, u.url)) {
		if strings.HasPrefix(c.Value, hub.TokenPrefix) {
			secret = c.Value
		}
	}
	if secret == "" {
		t.Fatal("no session cookie")
	}
	c, err := hubclient.New(strings.TrimPrefix(u.url, "http://"), hubclient.Options{Username: "carol", Token: secret})
	if err != nil {
		t.Fatal(err)
	}
	if w, err := c.Whoami(t.Context()); err != nil || w.User != "carol" {
		t.Fatalf("whoami with the session: %v %+v", err, w)
	}
	if _, err := c.CreateToken(t.Context(), "long", 90*24*time.Hour); !errors.Is(err, hub.ErrForbidden) {
		t.Fatalf("a web session creating a token: %v, want forbidden", err)
	}
}
