// Package hubclient talks to a Skiff hub (internal/hub): it logs in,
// pushes a package archive and submits it for review, pulls a package
// back into a byte-identical archive, searches, reviews and administers.
// Credentials live in hubs.json (see [Config]).
package hubclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hubapi"
	"github.com/skiffhq/skiff/internal/oci"
)

// Ref is a package address: HUB/OWNER/NAME:VERSION.
type Ref struct {
	Hub, Owner, Name, Version string
}

func (r Ref) String() string { return r.Hub + "/" + r.Owner + "/" + r.Name + ":" + r.Version }

var segRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
var versionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// ParseRef parses HUB/OWNER/NAME:VERSION; HUB may start with https:// or
// http://, which Ref.Hub keeps (see New).
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("package address %q: %s: write HUB/OWNER/NAME:VERSION, e.g. hub.example:8443/acme/shop:1.2.0", s, why)
	}
	a, err := endpoint.Parse(s)
	if err != nil {
		return Ref{}, fmt.Errorf("package address: %w", err)
	}
	hub := a.Host
	if a.Scheme != "" {
		hub = a.Scheme + "://" + a.Host
	}
	parts := append([]string{hub}, strings.Split(a.Path, "/")...)
	if len(parts) != 3 {
		return bad("want three parts separated by '/'")
	}
	name, version, ok := strings.Cut(parts[2], ":")
	if !ok || version == "" {
		return bad("no version")
	}
	r := Ref{Hub: hub, Owner: parts[1], Name: name, Version: version}
	switch {
	case r.Hub == "":
		return bad("no hub")
	case !segRE.MatchString(r.Owner):
		return bad("invalid owner")
	case !segRE.MatchString(r.Name):
		return bad("invalid name")
	case !versionRE.MatchString(r.Version):
		return bad("invalid version (OCI tags allow letters, digits, '.', '_' and '-')")
	}
	return r, nil
}

// LooksLikeRef reports whether s is meant as a hub address rather than
// a file: it has three '/'-separated parts, a ':' in the last, and no
// such file exists.
func LooksLikeRef(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return false
	}
	_, err := ParseRef(s)
	return err == nil
}

// Options configures a Client.
type Options struct {
	// Username and Token authenticate; empty for a login.
	Username, Token string
	// CAFile is a PEM bundle trusted in addition to the system roots;
	// it makes a loopback hub addressed without a scheme speak TLS.
	CAFile string
	// Insecure skips TLS certificate verification; like CAFile, it makes
	// a loopback hub addressed without a scheme speak TLS.
	Insecure bool
}

// Client calls one hub.
type Client struct {
	host string
	base string
	o    Options
	http *http.Client
}

// ErrPlainHTTP: a hub on another machine was addressed with http://.
var ErrPlainHTTP = errors.New("plain HTTP to a remote hub")

// New returns a client of the hub at addr ([https://|http://]HOST[:PORT],
// see endpoint.Parse): https:// means TLS and http:// plain HTTP, which
// only a loopback hub may be reached over (ErrPlainHTTP otherwise);
// without a scheme a loopback hub is reached over plain HTTP unless
// CAFile or Insecure asks for TLS, any other over TLS.
func New(addr string, o Options) (*Client, error) {
	a, err := endpoint.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("hub address: %w", err)
	}
	if a.Path != "" {
		return nil, fmt.Errorf("hub address %q: give [https://]HOST[:PORT] without a path", addr)
	}
	host := a.Host
	if a.Scheme == endpoint.HTTP && !endpoint.IsLoopback(host) {
		// Logins, tokens and approvals would cross the network in clear.
		return nil, fmt.Errorf("%w: hub address %q: plain HTTP to %s, which is not this machine, would send passwords and tokens in clear: write https://%s (with --hub-ca-file for a private CA)", ErrPlainHTTP, addr, host, host)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
	if o.CAFile != "" {
		pool, err := oci.CertPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &Client{host: host, base: a.URL(o.CAFile != "" || o.Insecure), o: o, http: &http.Client{Transport: tr, Timeout: 0}}, nil
}

// plainHTTP reports whether the hub is called over plain HTTP.
func (c *Client) plainHTTP() bool { return strings.HasPrefix(c.base, endpoint.HTTP+"://") }

// URL returns the hub's base URL: SCHEME://HOST[:PORT].
func (c *Client) URL() string { return c.base }

// Transport returns the client's HTTP transport (its TLS roots and
// verification), for requests outside the client's API.
func (c *Client) Transport() http.RoundTripper { return c.http.Transport }

// Host returns the hub's host[:port].
func (c *Client) Host() string { return c.host }

// Error is an error answer of the hub.
type Error struct {
	Status int
	hubapi.APIError
}

func (e *Error) Error() string { return e.Message }

// Is maps hub error codes to the hub's sentinel errors.
func (e *Error) Is(target error) bool {
	s := hubapi.ErrorForCode(e.Code)
	return s != nil && target == s
}

// call sends a JSON request and decodes the JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if oci.IsTLSError(err) {
			return fmt.Errorf("calling hub %s: %w: %w: pass the hub's CA certificate with --hub-ca-file (or skip verification with --hub-insecure)", c.host, oci.ErrTLS, err)
		}
		return fmt.Errorf("calling hub %s: %w (is the hub running, and is the address right?)", c.host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the hub's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error hubapi.APIError `json:"error"`
		}
		if resp.StatusCode == http.StatusBadRequest && c.plainHTTP() && bytes.Contains(b, []byte("HTTP request to an HTTPS server")) {
			return fmt.Errorf("calling hub %s over plain HTTP: it speaks TLS: write https://%s, or pass its CA certificate with --hub-ca-file", c.host, c.host)
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
			return &Error{Status: resp.StatusCode, APIError: hubapi.APIError{Code: hubapi.CodeInternal, Message: fmt.Sprintf("hub %s answered %s", c.host, resp.Status)}}
		}
		return &Error{Status: resp.StatusCode, APIError: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding the hub's answer: %w", err)
	}
	return nil
}

// Login exchanges a password (and TOTP code) for a token. ttl 0 takes
// the hub's default lifetime.
func (c *Client) Login(ctx context.Context, username, password, otp string, ttl time.Duration) (*hubapi.Token, error) {
	var t hubapi.Token
	err := c.call(ctx, http.MethodPost, "/api/v1/login", hubapi.LoginRequest{Username: username, Password: password, OTP: otp, TTL: int64(ttl / time.Second)}, &t)
	if errors.Is(err, hubapi.ErrOTPRequired) {
		return nil, fmt.Errorf("%w: user %s has MFA on: pass --otp CODE from the authenticator app", err, username)
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Whoami returns the authenticated user.
func (c *Client) Whoami(ctx context.Context) (*hubapi.Whoami, error) {
	var w hubapi.Whoami
	return &w, c.call(ctx, http.MethodGet, "/api/v1/whoami", nil, &w)
}

// SearchOptions selects packages.
type SearchOptions struct {
	Query string
	// Status is a package state or "all"; default approved.
	Status string
	Owner  string
}

// Search lists packages.
func (c *Client) Search(ctx context.Context, o SearchOptions) ([]hubapi.Package, error) {
	v := url.Values{}
	for k, s := range map[string]string{"q": o.Query, "status": o.Status, "owner": o.Owner} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out struct {
		Packages []hubapi.Package `json:"packages"`
	}
	return out.Packages, c.call(ctx, http.MethodGet, "/api/v1/packages?"+v.Encode(), nil, &out)
}

func pkgPath(owner, name, version string) string {
	return "/api/v1/packages/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/" + url.PathEscape(version)
}

// Package returns a package's metadata and review state.
func (c *Client) Package(ctx context.Context, owner, name, version string) (*hubapi.Package, error) {
	var p hubapi.Package
	return &p, c.call(ctx, http.MethodGet, pkgPath(owner, name, version), nil, &p)
}

// Submit asks the hub to run a pushed package's gates.
func (c *Client) Submit(ctx context.Context, owner, name, version string) (*hubapi.Package, error) {
	return c.submit(ctx, owner, name, version, "")
}

// submit is Submit refused (ErrConflict) unless the version's root is
// digest, when digest is not "".
func (c *Client) submit(ctx context.Context, owner, name, version, digest string) (*hubapi.Package, error) {
	path := pkgPath(owner, name, version) + "/submit"
	if digest != "" {
		path += "?digest=" + url.QueryEscape(digest)
	}
	var p hubapi.Package
	return &p, c.call(ctx, http.MethodPost, path, nil, &p)
}

// Approve approves a pending package.
func (c *Client) Approve(ctx context.Context, owner, name, version, comment string) (*hubapi.Package, error) {
	var p hubapi.Package
	return &p, c.call(ctx, http.MethodPost, pkgPath(owner, name, version)+"/approve", hubapi.ReviewRequest{Comment: comment}, &p)
}

// Reject rejects a quarantined or pending package.
func (c *Client) Reject(ctx context.Context, owner, name, version, comment string) (*hubapi.Package, error) {
	var p hubapi.Package
	return &p, c.call(ctx, http.MethodPost, pkgPath(owner, name, version)+"/reject", hubapi.ReviewRequest{Comment: comment}, &p)
}

// Remove withdraws a package.
func (c *Client) Remove(ctx context.Context, owner, name, version string) (*hubapi.Package, error) {
	var p hubapi.Package
	return &p, c.call(ctx, http.MethodDelete, pkgPath(owner, name, version), nil, &p)
}

// AddUser creates a user; an empty password makes the hub generate one,
// which is returned.
func (c *Client) AddUser(ctx context.Context, name, password string, admin bool) (string, error) {
	var out hubapi.AddUserResponse
	err := c.call(ctx, http.MethodPost, "/api/v1/users", hubapi.AddUserRequest{Name: name, Password: password, Admin: admin}, &out)
	return out.Password, err
}

// AddGroupMember adds user to group.
func (c *Client) AddGroupMember(ctx context.Context, group, user string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/groups/"+url.PathEscape(group)+"/members", hubapi.MemberRequest{User: user}, nil)
}

// Grant sets subject's permission (read, write, admin, none) on owner.
func (c *Client) Grant(ctx context.Context, owner, subject, level string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/grants", hubapi.GrantRequest{Owner: owner, Subject: subject, Level: level}, nil)
}

// CreateToken issues an API token for the caller.
func (c *Client) CreateToken(ctx context.Context, name string, ttl time.Duration) (*hubapi.Token, error) {
	var t hubapi.Token
	return &t, c.call(ctx, http.MethodPost, "/api/v1/tokens", hubapi.TokenRequest{Name: name, TTL: int64(ttl / time.Second)}, &t)
}

// EnrollMFA starts TOTP enrolment; it needs the password, and the
// current code (otp) when MFA is on already (enrolling a new device).
func (c *Client) EnrollMFA(ctx context.Context, password, otp string) (*hubapi.MFAEnrollment, error) {
	var e hubapi.MFAEnrollment
	return &e, c.call(ctx, http.MethodPost, "/api/v1/mfa/enroll", hubapi.MFAEnrollRequest{Password: password, OTP: otp}, &e)
}

// Logout revokes the client's token on the hub.
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/api/v1/logout", nil, nil)
}

// Tokens lists your unexpired tokens; a site administrator may name
// another user, or "*" for everyone's.
func (c *Client) Tokens(ctx context.Context, user string) ([]hubapi.TokenInfo, error) {
	var out struct {
		Tokens []hubapi.TokenInfo `json:"tokens"`
	}
	return out.Tokens, c.call(ctx, http.MethodGet, "/api/v1/tokens?user="+url.QueryEscape(user), nil, &out)
}

// RevokeToken revokes token id (yours, or anyone's for a site
// administrator).
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	return c.call(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%d", id), nil, nil)
}

// UpdateUser changes a user's site administration or disabled state
// (site administrators).
func (c *Client) UpdateUser(ctx context.Context, name string, u hubapi.UserUpdate) (*hubapi.User, error) {
	var out hubapi.User
	return &out, c.call(ctx, http.MethodPatch, "/api/v1/users/"+url.PathEscape(name), u, &out)
}

// RemoveUser deletes a user with their tokens, grants and group
// memberships (site administrators).
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(name), nil, nil)
}

// ChangePassword changes your password (current, and otp when MFA is
// on); your other tokens are revoked.
func (c *Client) ChangePassword(ctx context.Context, current, otp, password string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/password", hubapi.PasswordRequest{Current: current, OTP: otp, Password: password}, nil)
}

// ResetPassword sets a user's password (site administrators); an empty
// password makes the hub generate one, which is returned. The user's
// tokens are revoked.
func (c *Client) ResetPassword(ctx context.Context, name, password string) (string, error) {
	var out hubapi.PasswordRequest
	err := c.call(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(name)+"/password", hubapi.PasswordRequest{Password: password}, &out)
	return out.Password, err
}

// ResetMFA turns MFA off for a user who lost their device, revoking
// their tokens (site administrators).
func (c *Client) ResetMFA(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(name)+"/mfa", nil, nil)
}

// RemoveGroupMember takes user out of group (site administrators).
func (c *Client) RemoveGroupMember(ctx context.Context, group, user string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/groups/"+url.PathEscape(group)+"/members/"+url.PathEscape(user), nil, nil)
}

// ConfirmMFA turns MFA on with a code for the enrolled secret.
func (c *Client) ConfirmMFA(ctx context.Context, otp string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/mfa/confirm", hubapi.MFAConfirmRequest{OTP: otp}, nil)
}

// Audit returns audit entries after seq.
func (c *Client) Audit(ctx context.Context, after int64, limit int) ([]hubapi.AuditEntry, error) {
	var out struct {
		Entries []hubapi.AuditEntry `json:"entries"`
	}
	return out.Entries, c.call(ctx, http.MethodGet, fmt.Sprintf("/api/v1/audit?after=%d&limit=%d", after, limit), nil, &out)
}

// VerifyAudit has the hub check its audit chain. A broken chain is
// reported in the report (OK false), not as an error.
func (c *Client) VerifyAudit(ctx context.Context) (*hubapi.AuditReport, error) {
	var r hubapi.AuditReport
	return &r, c.call(ctx, http.MethodGet, "/api/v1/audit/verify", nil, &r)
}
