package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Web UI sessions are hub tokens (named "web") kept in a cookie: the hub
// stores only their hash, they expire after Options.TokenTTL, and
// logging out revokes them. The CSRF token of a session is an HMAC of
// its secret, so it needs no state either.

const (
	// sessionCookie is the session cookie's name over plain HTTP;
	// secureSessionCookie over TLS (the __Host- prefix makes browsers
	// insist on Secure, Path=/ and no Domain).
	sessionCookie       = "skiff_session"
	secureSessionCookie = "__Host-skiff_session"
	// sessionTokenName names the tokens behind web sessions.
	sessionTokenName = "web"
	// csrfField is the name of the forms' CSRF token field.
	csrfField = "csrf"
	// ActionLogout is the audit action of a web UI logout.
	ActionLogout = "logout"
)

// uiSession is a logged-in web UI user.
type uiSession struct {
	*principal
	secret string
	csrf   string
}

func cookieName(r *http.Request) string {
	if r.TLS != nil {
		return secureSessionCookie
	}
	return sessionCookie
}

// session returns the request's web session, or nil when there is none
// or it expired or was revoked.
func (h *Hub) session(r *http.Request) *uiSession {
	c, err := r.Cookie(cookieName(r))
	if err != nil || !strings.HasPrefix(c.Value, TokenPrefix) {
		return nil
	}
	ctx := r.Context()
	t, err := h.store.token(ctx, c.Value)
	if err != nil {
		return nil
	}
	u, err := h.store.User(ctx, t.User)
	if err != nil || u.Disabled {
		return nil
	}
	return &uiSession{principal: &principal{user: u.Name, admin: u.Admin, token: t}, secret: c.Value, csrf: csrfToken(c.Value)}
}

// csrfToken derives a session's CSRF token from its secret.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("skiff-hub-ui-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF reports whether the form carries s's CSRF token.
func (s *uiSession) validCSRF(r *http.Request) bool {
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(s.csrf))
}

func (h *Hub) setSession(w http.ResponseWriter, r *http.Request, secret string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(r),
		Value:    secret,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

func (h *Hub) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(r),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// sameOrigin reports whether a state-changing request comes from the
// hub's own pages: its Origin header (or, without one, its Referer) must
// name this host, and https when the hub serves TLS. Requests with
// neither header are refused.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme != "https" && (u.Scheme != "http" || r.TLS != nil) {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// safeNext returns next if it is a UI path on this hub, else the UI's
// start page: the login form must not redirect elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, uiPrefix) || strings.ContainsAny(next, "\\\r\n") {
		return uiPrefix
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return uiPrefix
	}
	return next
}
