package hub

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// principal is an authenticated user.
type principal struct {
	user  string
	admin bool
	// token is the token the caller authenticated with; nil for a
	// password.
	token *TokenInfo
}

// authenticate identifies the caller from a Bearer token, or Basic
// credentials whose password is a token or the user's password. No
// credentials give (nil, nil). Passwords are refused for users with MFA:
// they log in (skiff login) and use the token.
func (h *Hub) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	a := r.Header.Get("Authorization")
	if a == "" {
		return nil, nil
	}
	var user string
	var token *TokenInfo
	if tok, ok := strings.CutPrefix(a, "Bearer "); ok {
		t, err := h.store.token(ctx, strings.TrimSpace(tok))
		if err != nil {
			return nil, err
		}
		user, token = t.User, t
	} else {
		name, pass, ok := r.BasicAuth()
		if !ok {
			return nil, ErrBadCredential
		}
		if strings.HasPrefix(pass, TokenPrefix) {
			t, err := h.store.token(ctx, pass)
			if err != nil {
				return nil, err
			}
			if name != "" && name != t.User {
				return nil, ErrBadCredential
			}
			user, token = t.User, t
		} else {
			if err := h.checkPassword(ctx, name, pass, clientIP(r), false); err != nil {
				return nil, err
			}
			user = name
		}
	}
	u, err := h.store.User(ctx, user)
	if err != nil {
		return nil, ErrBadCredential
	}
	if u.Disabled {
		return nil, errDisabled(u.Name)
	}
	return &principal{user: u.Name, admin: u.Admin, token: token}, nil
}

// errDisabled is the error for a disabled user's credentials.
func errDisabled(user string) error {
	return fmt.Errorf("%w: user %s is disabled: ask a site administrator", ErrUnauthorized, user)
}

// checkPassword checks name's password under the login rate limit,
// auditing failures. Users with MFA need a code (otp) unless login is
// false, in which case passwords are refused for them.
func (h *Hub) checkPassword(ctx context.Context, name, pass, ip string, login bool, otp ...string) error {
	key := name + "|" + ip
	if !h.limiter.allowed(key) {
		return ErrRateLimited
	}
	u, err := h.store.User(ctx, name)
	if err == nil && !h.creds.ok(u, pass) {
		if CheckPassword(u.passwordHash, pass) {
			h.creds.add(u, pass)
		} else {
			err = ErrBadCredential
		}
	}
	if err == nil && u.Disabled {
		h.limiter.reset(key)
		_ = h.store.Audit(ctx, name, ActionLoginFailed, name, map[string]any{"ip": ip, "disabled": true})
		return errDisabled(name)
	}
	if err == nil && u.MFA {
		switch {
		case !login:
			return ErrOTPRequired
		case len(otp) == 0 || otp[0] == "":
			return ErrOTPRequired
		case !h.store.useTOTP(ctx, u, otp[0]):
			err = ErrBadCredential
		}
	}
	if err != nil {
		h.limiter.fail(key)
		// A failed attempt changes nothing: if it cannot be recorded,
		// the store logs that, and the caller still gets its answer.
		_ = h.store.Audit(ctx, name, ActionLoginFailed, name, map[string]any{"ip": ip})
		return ErrBadCredential
	}
	h.limiter.reset(key)
	return nil
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts failures per key within a sliding window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

func (l *limiter) recent(key string) []time.Time {
	cut := l.now().Add(-l.window)
	f := l.fails[key]
	i := 0
	for i < len(f) && !f[i].After(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = f
	}
	return f
}

func (l *limiter) allowed(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(key)) < l.max
}

func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[key] = append(l.recent(key), l.now())
	if len(l.fails) > 100_000 { // bound memory under a spray of names
		for k := range l.fails {
			l.recent(k)
		}
	}
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// credCache remembers recently verified passwords for a minute, so that
// clients sending Basic credentials with every registry request do not
// pay for argon2 each time. Keys include the stored hash, so changing a
// password invalidates them.
type credCache struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[[32]byte]time.Time
}

func newCredCache(now func() time.Time) *credCache {
	return &credCache{now: now, m: map[[32]byte]time.Time{}}
}

func credKey(u *User, pass string) [32]byte {
	return sha256.Sum256([]byte(u.Name + "\x00" + u.passwordHash + "\x00" + pass))
}

func (c *credCache) ok(u *User, pass string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[credKey(u, pass)]
	return ok && c.now().Before(exp)
}

func (c *credCache) add(u *User, pass string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10_000 {
		clear(c.m)
	}
	c.m[credKey(u, pass)] = c.now().Add(time.Minute)
}

// level returns p's permission on owner.
func (h *Hub) level(ctx context.Context, p *principal, owner string) Level {
	if p == nil {
		return LevelNone
	}
	l, err := h.store.Level(ctx, p.user, owner)
	if err != nil {
		return LevelNone
	}
	return l
}

// authError maps an authentication error to a status.
func authStatus(err error) int {
	switch {
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	default:
		return http.StatusUnauthorized
	}
}
