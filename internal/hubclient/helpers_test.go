package hubclient_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sign"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testHub is a running hub with users:
//
//	root   site administrator
//	alice  write on acme (the uploader)
//	bob    admin on acme (a reviewer)
//	carol  read on acme
//	dave   nothing
type testHub struct {
	hub   *hub.Hub
	host  string
	root  string
	clock *clock
	key   *sign.PrivateKey
	ctx   context.Context
}

const password = "correct-horse-battery"

func newTestHub(t *testing.T, o hub.Options) *testHub {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, trustDir := hubtest.TrustedKey(t)
	clk := &clock{t: time.Now()}
	o.Root = t.TempDir()
	if o.TrustDir == "" {
		o.TrustDir = trustDir
	}
	o.Now = clk.Now
	h, err := hub.New(ctx, o)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	host := hubtest.Serve(t, h)
	st := h.Store()
	for _, u := range []struct {
		name  string
		admin bool
	}{{"root", true}, {"alice", false}, {"bob", false}, {"carol", false}, {"dave", false}} {
		if err := st.AddUser(ctx, u.name, password, u.admin); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct {
		user  string
		level hub.Level
	}{{"alice", hub.LevelWrite}, {"bob", hub.LevelAdmin}, {"carol", hub.LevelRead}} {
		if err := st.Grant(ctx, "acme", g.user, g.level); err != nil {
			t.Fatal(err)
		}
	}
	return &testHub{hub: h, host: host, root: o.Root, clock: clk, key: key, ctx: ctx}
}

// client logs user in and returns a client with the token.
func (th *testHub) client(t *testing.T, user string) *hubclient.Client {
	t.Helper()
	anon := th.anon(t)
	tok, err := anon.Login(th.ctx, user, password, "", 0)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	c, err := hubclient.New(th.host, hubclient.Options{Username: user, Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pushAll pushes each archive to owner as c.
func pushAll(t *testing.T, c *hubclient.Client, owner string, archives ...string) {
	t.Helper()
	for _, f := range archives {
		if _, err := c.Push(context.Background(), f, owner, hubclient.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (th *testHub) anon(t *testing.T) *hubclient.Client {
	t.Helper()
	c, err := hubclient.New(th.host, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
