package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// APIError is [hubapi.APIError].
type APIError = hubapi.APIError

// Error codes of the JSON API: [hubapi]'s.
const (
	CodeUnauthorized = hubapi.CodeUnauthorized
	CodeOTPRequired  = hubapi.CodeOTPRequired
	CodeRateLimited  = hubapi.CodeRateLimited
	CodeForbidden    = hubapi.CodeForbidden
	CodeNotFound     = hubapi.CodeNotFound
	CodeConflict     = hubapi.CodeConflict
	CodeInvalid      = hubapi.CodeInvalid
	CodeInternal     = hubapi.CodeInternal
	CodeAuditFailed  = hubapi.CodeAuditFailed
)

func (h *Hub) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/v2/", h.serveOCI)
	m.HandleFunc("/v2", h.serveOCI)
	m.HandleFunc("GET /healthz", h.healthz)
	m.HandleFunc("POST /api/v1/login", h.apiLogin)
	m.HandleFunc("GET /api/v1/whoami", h.authed(h.apiWhoami))
	m.HandleFunc("GET /api/v1/packages", h.authed(h.apiPackages))
	m.HandleFunc("GET /api/v1/packages/{owner}/{name}/{version}", h.authed(h.apiPackage))
	m.HandleFunc("POST /api/v1/packages/{owner}/{name}/{version}/submit", h.authed(h.apiSubmit))
	m.HandleFunc("POST /api/v1/packages/{owner}/{name}/{version}/approve", h.authed(h.apiReview(h.Approve)))
	m.HandleFunc("POST /api/v1/packages/{owner}/{name}/{version}/reject", h.authed(h.apiReview(h.Reject)))
	m.HandleFunc("DELETE /api/v1/packages/{owner}/{name}/{version}", h.authed(h.apiRemove))
	m.HandleFunc("GET /api/v1/users", h.authed(h.apiUsers))
	m.HandleFunc("POST /api/v1/users", h.authed(h.apiAddUser))
	m.HandleFunc("POST /api/v1/groups/{group}/members", h.authed(h.apiAddMember))
	m.HandleFunc("GET /api/v1/grants", h.authed(h.apiGrants))
	m.HandleFunc("POST /api/v1/grants", h.authed(h.apiGrant))
	m.HandleFunc("POST /api/v1/tokens", h.authed(h.apiToken))
	m.HandleFunc("POST /api/v1/mfa/enroll", h.authed(h.apiMFAEnroll))
	m.HandleFunc("POST /api/v1/mfa/confirm", h.authed(h.apiMFAConfirm))
	m.HandleFunc("GET /api/v1/audit", h.authed(h.apiAudit))
	m.HandleFunc("GET /api/v1/audit/verify", h.authed(h.apiAuditVerify))
	h.opsRoutes(m)     // ops.go: rescan, export, import
	h.accountRoutes(m) // accounts.go: logout, tokens, users, passwords
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no such API endpoint %s %s", ErrNotFound, r.Method, r.URL.Path))
	})
	h.uiRoutes(m)
	h.mux = m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError maps sentinel errors to statuses and codes.
func writeError(w http.ResponseWriter, err error) {
	status, code := errorStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="skiff-hub"`)
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = publicMessage(err)
	}
	writeJSON(w, status, map[string]APIError{"error": {Code: code, Message: msg}})
}

// ErrorForCode is [hubapi.ErrorForCode].
func ErrorForCode(code string) error { return hubapi.ErrorForCode(code) }

// errorStatus maps sentinel errors to an HTTP status and an API code.
func errorStatus(err error) (status int, code string) {
	status, code = http.StatusInternalServerError, CodeInternal
	switch {
	case errors.Is(err, ErrOTPRequired):
		status, code = http.StatusUnauthorized, CodeOTPRequired
	case errors.Is(err, ErrRateLimited):
		status, code = http.StatusTooManyRequests, CodeRateLimited
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrBadCredential), errors.Is(err, ErrTokenExpired):
		status, code = http.StatusUnauthorized, CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		status, code = http.StatusForbidden, CodeForbidden
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, ErrExists):
		status, code = http.StatusConflict, CodeConflict
	case errors.Is(err, ErrInvalid):
		status, code = http.StatusBadRequest, CodeInvalid
	case errors.Is(err, ErrAuditFailed):
		code = CodeAuditFailed
	}
	return status, code
}

type authedHandler func(w http.ResponseWriter, r *http.Request, p *principal)

// authed requires an authenticated caller.
func (h *Hub) authed(f authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			writeError(w, err)
			return
		}
		if p == nil {
			writeError(w, fmt.Errorf("%w: log in with `skiff login HUB`", ErrUnauthorized))
			return
		}
		f(w, r, p)
	}
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: decoding the request: %v", ErrInvalid, err)
	}
	return nil
}

// LoginRequest is [hubapi.LoginRequest].
type LoginRequest = hubapi.LoginRequest

func (h *Hub) apiLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if err := h.checkPassword(ctx, req.Username, req.Password, clientIP(r), true, req.OTP); err != nil {
		writeError(w, err)
		return
	}
	ttl := h.o.TokenTTL
	if req.TTL > 0 {
		ttl = min(time.Duration(req.TTL)*time.Second, h.o.MaxTokenTTL)
	}
	// No token is issued without its login entry.
	t, err := h.store.createToken(ctx, req.Username, "login", TokenLogin, ttl, func(t *Token) *auditRecord {
		return &auditRecord{req.Username, ActionLogin, req.Username, map[string]any{"ip": clientIP(r), "expires": t.Expires}}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// Whoami is [hubapi.Whoami].
type Whoami = hubapi.Whoami

func (h *Hub) apiWhoami(w http.ResponseWriter, r *http.Request, p *principal) {
	u, err := h.store.User(r.Context(), p.user)
	if err != nil {
		writeError(w, err)
		return
	}
	writable, err := h.writableOwners(r.Context(), p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Whoami{User: u.Name, Admin: u.Admin, MFA: u.MFA, Writable: writable})
}

// writableOwners lists the owners with a grant that p may push to, sorted.
func (h *Hub) writableOwners(ctx context.Context, p *principal) ([]string, error) {
	gs, err := h.store.Grants(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	prev := ""
	for _, g := range gs { // sorted by owner
		if g.Owner == prev {
			continue
		}
		prev = g.Owner
		if h.level(ctx, p, g.Owner) >= LevelWrite {
			out = append(out, g.Owner)
		}
	}
	return out, nil
}

// apiPackages searches packages: ?q= substring, ?status= a state or
// "all" (default approved), ?owner=. Readers see approved packages
// only; writers of an owner see all of its packages.
func (h *Hub) apiPackages(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	q := r.URL.Query()
	status := q.Get("status")
	if status == "" {
		status = StatusApproved
	}
	if status == "all" {
		status = ""
	}
	out, err := h.searchPackages(ctx, p, PackageQuery{Query: q.Get("q"), Status: status, Owner: q.Get("owner")})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"packages": out})
}

// searchPackages lists the packages q selects that p may see, without
// their descriptions: readers see approved packages only; writers of an
// owner see all of its packages. The API and the web UI share it.
func (h *Hub) searchPackages(ctx context.Context, p *principal, q PackageQuery) ([]Package, error) {
	ps, err := h.store.Packages(ctx, q)
	if err != nil {
		return nil, err
	}
	levels := map[string]Level{}
	out := []Package{}
	for _, pkg := range ps {
		l, ok := levels[pkg.Owner]
		if !ok {
			l = h.level(ctx, p, pkg.Owner)
			levels[pkg.Owner] = l
		}
		if l >= LevelWrite || (l == LevelRead && pkg.Status == StatusApproved) {
			pkg.Description = nil // keep listings small
			out = append(out, pkg)
		}
	}
	return out, nil
}

// visiblePackage loads the path's package if p may see it.
func (h *Hub) visiblePackage(ctx context.Context, r *http.Request, p *principal) (*Package, error) {
	owner, name, version := r.PathValue("owner"), r.PathValue("name"), r.PathValue("version")
	l := h.level(ctx, p, owner)
	pkg, err := h.store.Package(ctx, owner, name, version)
	if err != nil || l == LevelNone || (l == LevelRead && pkg.Status != StatusApproved) {
		return nil, fmt.Errorf("package %s/%s:%s: %w", owner, name, version, ErrNotFound)
	}
	return pkg, nil
}

func (h *Hub) apiPackage(w http.ResponseWriter, r *http.Request, p *principal) {
	pkg, err := h.visiblePackage(r.Context(), r, p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pkg)
}

func (h *Hub) apiSubmit(w http.ResponseWriter, r *http.Request, p *principal) {
	ctx := r.Context()
	owner := r.PathValue("owner")
	if h.level(ctx, p, owner) < LevelWrite {
		writeError(w, fmt.Errorf("%w: submitting packages of %s needs write permission", ErrForbidden, owner))
		return
	}
	// A client naming the root it pushed (?digest=) is told when the
	// version holds another one, never the state of content it did not
	// push.
	if d := r.URL.Query().Get("digest"); d != "" {
		if cur, err := h.store.Package(ctx, owner, r.PathValue("name"), r.PathValue("version")); err == nil && cur.Digest != d {
			writeError(w, versionTaken(cur))
			return
		}
	}
	// Reviews outlive a dropped connection.
	pkg, err := h.Submit(context.WithoutCancel(ctx), owner, r.PathValue("name"), r.PathValue("version"), p.user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pkg)
}

// ReviewRequest is [hubapi.ReviewRequest].
type ReviewRequest = hubapi.ReviewRequest

func (h *Hub) apiReview(f func(ctx context.Context, owner, name, version, actor, comment string) (*Package, error)) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, p *principal) {
		var req ReviewRequest
		if err := decode(r, &req); err != nil {
			writeError(w, err)
			return
		}
		pkg, err := f(r.Context(), r.PathValue("owner"), r.PathValue("name"), r.PathValue("version"), p.user, req.Comment)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, pkg)
	}
}

func (h *Hub) apiRemove(w http.ResponseWriter, r *http.Request, p *principal) {
	pkg, err := h.Remove(r.Context(), r.PathValue("owner"), r.PathValue("name"), r.PathValue("version"), p.user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pkg)
}

func (h *Hub) requireAdmin(w http.ResponseWriter, p *principal) bool {
	if !p.admin {
		writeError(w, fmt.Errorf("%w: this needs a site administrator", ErrForbidden))
		return false
	}
	return true
}

func (h *Hub) apiUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	us, err := h.store.Users(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

// AddUserRequest is [hubapi.AddUserRequest].
type AddUserRequest = hubapi.AddUserRequest

// AddUserResponse is [hubapi.AddUserResponse].
type AddUserResponse = hubapi.AddUserResponse

func (h *Hub) apiAddUser(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	var req AddUserRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp := AddUserResponse{Name: req.Name}
	if req.Password == "" {
		req.Password = RandomPassword()
		resp.Password = req.Password
	}
	rec := &auditRecord{p.user, ActionUserAdd, req.Name, map[string]any{"admin": req.Admin}}
	if err := h.store.addUser(r.Context(), req.Name, req.Password, req.Admin, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// MemberRequest is [hubapi.MemberRequest].
type MemberRequest = hubapi.MemberRequest

func (h *Hub) apiAddMember(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	var req MemberRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	group := r.PathValue("group")
	rec := &auditRecord{p.user, ActionGroupAdd, group, map[string]any{"user": req.User}}
	if err := h.store.addGroupMember(r.Context(), group, req.User, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"group": group, "user": req.User})
}

// GrantRequest is [hubapi.GrantRequest].
type GrantRequest = hubapi.GrantRequest

func (h *Hub) apiGrant(w http.ResponseWriter, r *http.Request, p *principal) {
	var req GrantRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if h.level(ctx, p, req.Owner) < LevelAdmin {
		writeError(w, fmt.Errorf("%w: granting permissions on %s needs admin permission on it", ErrForbidden, req.Owner))
		return
	}
	l, err := ParseLevel(req.Level)
	if err != nil {
		writeError(w, err)
		return
	}
	rec := &auditRecord{p.user, ActionGrant, req.Owner, map[string]any{"subject": req.Subject, "level": l.String()}}
	if err := h.store.grant(ctx, req.Owner, req.Subject, l, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (h *Hub) apiGrants(w http.ResponseWriter, r *http.Request, p *principal) {
	owner := r.URL.Query().Get("owner")
	if (owner == "" && !p.admin) || (owner != "" && h.level(r.Context(), p, owner) < LevelAdmin) {
		writeError(w, fmt.Errorf("%w: listing grants needs admin permission on the owner", ErrForbidden))
		return
	}
	gs, err := h.store.Grants(r.Context(), owner)
	if err != nil {
		writeError(w, err)
		return
	}
	if gs == nil {
		gs = []GrantEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": gs})
}

// TokenRequest is [hubapi.TokenRequest].
type TokenRequest = hubapi.TokenRequest

func (h *Hub) apiToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var req TokenRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if p.token != nil && p.token.Kind == TokenWeb {
		writeError(w, fmt.Errorf("%w: a web session cannot create API tokens: log in with `skiff login` and run `skiff hub token create`", ErrForbidden))
		return
	}
	ttl := min(time.Duration(req.TTL)*time.Second, h.o.MaxTokenTTL)
	t, err := h.store.createToken(r.Context(), p.user, req.Name, TokenAPI, ttl, func(t *Token) *auditRecord {
		return &auditRecord{p.user, ActionToken, p.user, map[string]any{"name": req.Name, "expires": t.Expires}}
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// MFAEnrollment is [hubapi.MFAEnrollment].
type MFAEnrollment = hubapi.MFAEnrollment

// MFAEnrollRequest is [hubapi.MFAEnrollRequest].
type MFAEnrollRequest = hubapi.MFAEnrollRequest

func (h *Hub) apiMFAEnroll(w http.ResponseWriter, r *http.Request, p *principal) {
	var req MFAEnrollRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if err := h.checkPassword(ctx, p.user, req.Password, clientIP(r), true, req.OTP); err != nil {
		if errors.Is(err, ErrOTPRequired) {
			err = fmt.Errorf("%w: MFA is on: pass the current code (--otp) to enrol a new device; lost it? a site administrator can reset MFA", err)
		}
		writeError(w, err)
		return
	}
	secret, err := h.store.EnrollTOTP(ctx, p.user)
	if err != nil {
		writeError(w, err)
		return
	}
	// The pending secret changes nothing until it is confirmed; a failed
	// append is logged by the store.
	_ = h.store.Audit(ctx, p.user, ActionMFAEnroll, p.user, map[string]any{"ip": clientIP(r)})
	writeJSON(w, http.StatusOK, MFAEnrollment{Secret: secret, URL: TOTPURL("skiff-hub", p.user, secret)})
}

// MFAConfirmRequest is [hubapi.MFAConfirmRequest].
type MFAConfirmRequest = hubapi.MFAConfirmRequest

func (h *Hub) apiMFAConfirm(w http.ResponseWriter, r *http.Request, p *principal) {
	var req MFAConfirmRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	rec := &auditRecord{p.user, ActionMFA, p.user, map[string]any{"enabled": true}}
	if err := h.store.confirmTOTP(r.Context(), p.user, req.OTP, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"mfa": true})
}

func (h *Hub) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	es, err := h.store.AuditLog(r.Context(), AuditQuery{After: after, Limit: min(limit, 1000)})
	if err != nil {
		writeError(w, err)
		return
	}
	if es == nil {
		es = []AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

func (h *Hub) apiAuditVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	if !h.requireAdmin(w, p) {
		return
	}
	rep, err := h.store.VerifyAudit(r.Context())
	if rep == nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// healthz answers 200 "ok" while the hub can reach its database, 503
// otherwise; it needs no credentials and tells nothing else (skiff doctor
// --hub, load balancers in front of replicas).
func (h *Hub) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.store.Ping(ctx); err != nil {
		h.logger.Error("health check: database unreachable", "err", err)
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}
