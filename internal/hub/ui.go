package hub

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/bytesize"
)

// The web UI: server-rendered pages (html/template, embedded; no
// JavaScript, nothing loaded from elsewhere) to log in, search packages,
// inspect one and approve or reject it. Every action goes through the
// same hub logic as the JSON API: Hub.checkPassword (rate limit, MFA,
// audit), searchPackages and visiblePackage (permissions), Hub.Approve
// and Hub.Reject (approval rules, audit).

// uiPrefix is where the UI is mounted.
const uiPrefix = "/ui/"

//go:embed ui
var uiFiles embed.FS

// uiPages are the page templates, each parsed with the layout.
var uiPages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"statusLabel": statusLabel,
		"shortDigest": shortDigest,
		"size":        bytesize.Format,
		"when":        func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"pkgPath":     func(p *Package) string { return packagePath(p.Owner, p.Name, p.Version) },
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"login", "packages", "package", "error"} {
		out[page] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(uiFiles, "ui/layout.html", "ui/"+page+".html"))
	}
	return out
}()

func (h *Hub) uiRoutes(m *http.ServeMux) {
	static, _ := fs.Sub(uiFiles, "ui/static")
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, uiPrefix, http.StatusFound)
	})
	m.Handle("GET /ui/static/", uiHeaders(http.StripPrefix("/ui/static/", http.FileServerFS(static))))
	m.Handle("GET /ui/login", uiHeaders(http.HandlerFunc(h.uiLoginForm)))
	m.Handle("POST /ui/login", uiHeaders(http.HandlerFunc(h.uiLogin)))
	m.Handle("POST /ui/logout", uiHeaders(h.uiAuthed(h.uiLogout)))
	m.Handle("GET /ui/{$}", uiHeaders(h.uiAuthed(h.uiPackages)))
	m.Handle("GET /ui/packages/{owner}/{name}/{version}", uiHeaders(h.uiAuthed(h.uiPackage)))
	m.Handle("POST /ui/packages/{owner}/{name}/{version}/approve", uiHeaders(h.uiAuthed(h.uiReview("approve", h.Approve))))
	m.Handle("POST /ui/packages/{owner}/{name}/{version}/reject", uiHeaders(h.uiAuthed(h.uiReview("reject", h.Reject))))
	m.Handle("/ui/", uiHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.uiError(w, r, h.session(r), http.StatusNotFound, "There is no such page.")
	})))
}

// uiHeaders sets the UI's security headers: nothing but the hub's own
// style sheet loads, no framing, no caching of pages, and Referer only
// to the hub itself (its POST check falls back on it).
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

type uiHandler func(w http.ResponseWriter, r *http.Request, s *uiSession)

// uiAuthed requires a session: GET requests without one are redirected
// to the login form (which returns to them), others are refused. POST
// requests must also come from the hub's own pages and carry the
// session's CSRF token.
func (h *Hub) uiAuthed(f uiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.session(r)
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if s == nil {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			f(w, r, s)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		switch {
		case !sameOrigin(r):
			h.uiError(w, r, s, http.StatusForbidden, "This request did not come from the hub's own pages (Origin/Referer check), so it was refused. Reload the page and try again.")
		case s == nil:
			h.uiError(w, r, nil, http.StatusUnauthorized, "Your session has expired: log in again.")
		case !s.validCSRF(r):
			h.uiError(w, r, s, http.StatusForbidden, "The form's security token is missing or stale, so the request was refused. Reload the page and try again.")
		default:
			f(w, r, s)
		}
	})
}

// uiPage is what every page template gets.
type uiPage struct {
	Title string
	// User and CSRF are set when someone is logged in (the header shows
	// the name and a logout button).
	User string
	CSRF string
	// Flash is a confirmation, Error a problem, shown above the content.
	Flash, Error string
	Data         any
}

func (h *Hub) render(w http.ResponseWriter, status int, page string, p uiPage) {
	var buf bytes.Buffer
	if err := uiPages[page].Execute(&buf, p); err != nil {
		h.logger.Error("rendering a web page", "page", page, "error", err)
		http.Error(w, "internal error: see the hub's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Hub) uiError(w http.ResponseWriter, r *http.Request, s *uiSession, status int, msg string) {
	p := uiPage{Title: http.StatusText(status), Error: msg}
	if s != nil {
		p.User, p.CSRF = s.user, s.csrf
	}
	h.render(w, status, "error", p)
}

// loginData fills the login form.
type loginData struct {
	Username string
	Next     string
	// OTP shows the one-time code field (the user has MFA on).
	OTP bool
}

func (h *Hub) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if h.session(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, "login", uiPage{Title: "Log in", Data: loginData{Next: next}})
}

func (h *Hub) uiLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) {
		h.uiError(w, r, nil, http.StatusForbidden, "This request did not come from the hub's own login page (Origin/Referer check), so it was refused.")
		return
	}
	ctx := r.Context()
	user := strings.TrimSpace(r.PostFormValue("username"))
	d := loginData{Username: user, Next: safeNext(r.PostFormValue("next")), OTP: r.PostFormValue("otp") != ""}
	err := h.checkPassword(ctx, user, r.PostFormValue("password"), clientIP(r), true, strings.TrimSpace(r.PostFormValue("otp")))
	switch {
	case errors.Is(err, ErrOTPRequired):
		d.OTP = true
		h.render(w, http.StatusUnauthorized, "login", uiPage{Title: "Log in", Data: d,
			Error: "Two-factor authentication is on for this account: enter your password again and the current code from your authenticator app."})
		return
	case errors.Is(err, ErrRateLimited):
		h.render(w, http.StatusTooManyRequests, "login", uiPage{Title: "Log in", Data: d,
			Error: fmt.Sprintf("Too many failed logins for this account from your address: wait %s and try again.", LoginWindow)})
		return
	case err != nil:
		h.render(w, http.StatusUnauthorized, "login", uiPage{Title: "Log in", Data: d,
			Error: "The user name, password or code is wrong."})
		return
	}
	// No session is issued without its login entry.
	t, err := h.store.createToken(ctx, user, sessionTokenName, TokenWeb, h.o.TokenTTL, func(t *Token) *auditRecord {
		return &auditRecord{user, ActionLogin, user, map[string]any{"ip": clientIP(r), "expires": t.Expires, "via": "web"}}
	})
	if err != nil {
		h.logger.Error("creating a web session", "user", user, "error", err)
		h.uiError(w, r, nil, http.StatusInternalServerError, "The hub could not start a session: see its log.")
		return
	}
	h.setSession(w, r, t.Secret, t.Expires)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (h *Hub) uiLogout(w http.ResponseWriter, r *http.Request, s *uiSession) {
	ctx := r.Context()
	if err := h.store.RevokeToken(ctx, s.secret); err != nil {
		h.logger.Error("ending a web session", "user", s.user, "error", err)
	}
	// The session is revoked either way; a failed append is logged by
	// the store.
	_ = h.store.Audit(ctx, s.user, ActionLogout, s.user, map[string]any{"ip": clientIP(r), "via": "web"})
	h.clearSession(w, r)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// uiStatuses are the package list's status filter choices.
var uiStatuses = []string{StatusPending, StatusApproved, StatusQuarantined, StatusRejected, StatusBlocked, StatusRemoved}

type packagesData struct {
	Query, Status string
	Statuses      []string
	Packages      []Package
}

func (h *Hub) uiPackages(w http.ResponseWriter, r *http.Request, s *uiSession) {
	q := r.URL.Query()
	d := packagesData{Query: strings.TrimSpace(q.Get("q")), Statuses: uiStatuses}
	for _, st := range uiStatuses {
		if q.Get("status") == st {
			d.Status = st
		}
	}
	ps, err := h.searchPackages(r.Context(), s.principal, PackageQuery{Query: d.Query, Status: d.Status})
	if err != nil {
		h.logger.Error("listing packages", "error", err)
		h.uiError(w, r, s, http.StatusInternalServerError, "The hub could not list packages: see its log.")
		return
	}
	d.Packages = ps
	h.render(w, http.StatusOK, "packages", uiPage{Title: "Packages", User: s.user, CSRF: s.csrf, Data: d})
}

func (h *Hub) uiPackage(w http.ResponseWriter, r *http.Request, s *uiSession) {
	var flash string
	switch r.URL.Query().Get("done") {
	case "approve":
		flash = "You approved this package."
	case "reject":
		flash = "You rejected this package."
	}
	h.renderPackage(w, r, s, http.StatusOK, flash, "")
}

// renderPackage shows the path's package, or "not found" when s may not
// see it.
func (h *Hub) renderPackage(w http.ResponseWriter, r *http.Request, s *uiSession, status int, flash, problem string) {
	ctx := r.Context()
	p, err := h.visiblePackage(ctx, r, s.principal)
	if err != nil {
		h.uiError(w, r, s, http.StatusNotFound, fmt.Sprintf("There is no package %s/%s:%s, or you may not see it.", r.PathValue("owner"), r.PathValue("name"), r.PathValue("version")))
		return
	}
	v := h.packageView(ctx, s, p)
	h.render(w, status, "package", uiPage{Title: p.Ref(), User: s.user, CSRF: s.csrf, Flash: flash, Error: problem, Data: v})
}

// uiReview approves or rejects the path's package with the hub's own
// logic, then shows it again.
func (h *Hub) uiReview(verb string, f func(ctx context.Context, owner, name, version, actor, comment string) (*Package, error)) uiHandler {
	return func(w http.ResponseWriter, r *http.Request, s *uiSession) {
		comment := strings.TrimSpace(r.PostFormValue("comment"))
		if len(comment) > 2000 {
			comment = comment[:2000]
		}
		owner, name, version := r.PathValue("owner"), r.PathValue("name"), r.PathValue("version")
		if _, err := h.visiblePackage(r.Context(), r, s.principal); err != nil {
			h.uiError(w, r, s, http.StatusNotFound, fmt.Sprintf("There is no package %s/%s:%s, or you may not see it.", owner, name, version))
			return
		}
		if _, err := f(r.Context(), owner, name, version, s.user, comment); err != nil {
			status, _ := errorStatus(err)
			msg := err.Error()
			if status == http.StatusInternalServerError {
				h.logger.Error("reviewing a package", "verb", verb, "package", owner+"/"+name+":"+version, "error", err)
				msg = publicMessage(err)
			}
			h.renderPackage(w, r, s, status, "", "Could not "+verb+": "+msg)
			return
		}
		http.Redirect(w, r, packagePath(owner, name, version)+"?done="+verb, http.StatusSeeOther)
	}
}

func packagePath(owner, name, version string) string {
	return "/ui/packages/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/" + url.PathEscape(version)
}

// statusLabel is how the UI names a status.
func statusLabel(status string) string {
	switch status {
	case StatusPending:
		return "pending approval"
	case StatusBlocked:
		return "blocked (failed a rescan)"
	}
	return status
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

// decodeDescription decodes a package's stored description (nil before
// its gates ran).
func decodeDescription(raw json.RawMessage) *bundle.Description {
	if len(raw) == 0 {
		return nil
	}
	var d bundle.Description
	if json.Unmarshal(raw, &d) != nil {
		return nil
	}
	return &d
}
