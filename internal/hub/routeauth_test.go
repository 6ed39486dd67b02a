package hub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
)

// ok in a row's want is any 2xx status; other numbers are exact.
const ok = 2

// roles, in the order of want: anonymous, reader (read on acme), writer
// (write on acme), owner admin (admin on acme), site admin.
var roles = []string{"", "carol", "dave", "alice", "root"}

// TestRouteAuthorization calls every route the hub registers (but the
// web UI's, which TestUIReviewWithoutJavaScript covers) as each role and
// checks the status class. The route list is read from the hub's own
// source, so a new route without a row here fails the test.
func TestRouteAuthorization(t *testing.T) {
	u := newUIHub(t, time.Now)
	ctx := t.Context()
	st := u.hub.Store()
	if err := st.AddUser(ctx, "dave", uiPassword, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Grant(ctx, "acme", "dave", hub.LevelWrite); err != nil {
		t.Fatal(err)
	}
	// Targets of the account administration routes, one per route (the
	// site administrator's call succeeds and changes it), and erin, whose
	// token the others try to revoke.
	for _, name := range []string{"erin", "t-patch", "t-remove", "t-reset", "t-mfa", "t-member"} {
		if err := st.AddUser(ctx, name, uiPassword, false); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	login := func(user string) hub.Token {
		var tok hub.Token
		if code := call(t, u.url, "", "POST", "/api/v1/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, uiPassword), &tok); code != 200 {
			t.Fatalf("login %s: %d", user, code)
		}
		return tok
	}
	for _, r := range roles[1:] {
		tokens[r] = login(r).Secret
	}
	erin := login("erin")
	erinWorks := func() bool {
		return call(t, u.url, erin.Secret, "GET", "/api/v1/whoami", "", nil) == 200
	}
	// The site administrator adds t-member to g1 before removing it.
	if code := call(t, u.url, tokens["root"], "POST", "/api/v1/groups/g1/members", `{"user":"t-member"}`, nil); code/100 != 2 {
		t.Fatalf("adding t-member to g1: %d", code)
	}

	type row struct {
		pattern string // as registered
		method  string
		path    string
		body    string
		want    [5][]int // anonymous, reader, writer, owner admin, site admin
		// before runs before the site administrator's call.
		before func(t *testing.T)
	}
	w := func(c ...int) []int { return c }
	acct := [5][]int{w(401), w(403), w(403), w(403), w(ok)} // site administrators only
	anyone := [5][]int{w(401), w(ok), w(ok), w(ok), w(ok)}  // every user
	rows := []row{
		{"GET /healthz", "GET", "/healthz", "", [5][]int{w(ok), w(ok), w(ok), w(ok), w(ok)}, nil},
		{"POST /api/v1/login", "POST", "/api/v1/login", `{"username":"nobody","password":"x"}`, [5][]int{w(401), w(401), w(401), w(401), w(401)}, nil},
		{"GET /api/v1/whoami", "GET", "/api/v1/whoami", "", anyone, nil},
		{"GET /api/v1/packages", "GET", "/api/v1/packages", "", anyone, nil},
		{"GET /api/v1/packages/{owner}/{name}/{version}", "GET", "/api/v1/packages/acme/none/1.0.0", "", [5][]int{w(401), w(404), w(404), w(404), w(404)}, nil},
		{"POST /api/v1/packages/{owner}/{name}/{version}/submit", "POST", "/api/v1/packages/acme/none/1.0.0/submit", "", [5][]int{w(401), w(403), w(404), w(404), w(404)}, nil},
		{"POST /api/v1/packages/{owner}/{name}/{version}/approve", "POST", "/api/v1/packages/acme/none/1.0.0/approve", "{}", [5][]int{w(401), w(403), w(403), w(404), w(404)}, nil},
		{"POST /api/v1/packages/{owner}/{name}/{version}/reject", "POST", "/api/v1/packages/acme/none/1.0.0/reject", "{}", [5][]int{w(401), w(403), w(403), w(404), w(404)}, nil},
		{"DELETE /api/v1/packages/{owner}/{name}/{version}", "DELETE", "/api/v1/packages/acme/none/1.0.0", "", [5][]int{w(401), w(403), w(403), w(404), w(404)}, nil},
		{"GET /api/v1/users", "GET", "/api/v1/users", "", acct, nil},
		{"POST /api/v1/users", "POST", "/api/v1/users", `{"name":"t-new","password":"correct-horse-battery"}`, acct, nil},
		{"POST /api/v1/groups/{group}/members", "POST", "/api/v1/groups/g2/members", `{"user":"erin"}`, acct, nil},
		{"GET /api/v1/grants", "GET", "/api/v1/grants", "", acct, nil},
		// On an owner the caller does not administer (alice administers acme).
		{"POST /api/v1/grants", "POST", "/api/v1/grants", `{"owner":"other","subject":"erin","level":"read"}`, acct, nil},
		// An owner's administrator grants on it.
		{"POST /api/v1/grants", "POST", "/api/v1/grants", `{"owner":"acme","subject":"erin","level":"read"}`, [5][]int{w(401), w(403), w(403), w(ok), w(ok)}, nil},
		{"POST /api/v1/tokens", "POST", "/api/v1/tokens", `{"name":"t","ttl":3600}`, anyone, nil},
		{"POST /api/v1/mfa/enroll", "POST", "/api/v1/mfa/enroll", `{"password":"correct-horse-battery"}`, anyone, nil},
		{"GET /api/v1/audit", "GET", "/api/v1/audit", "", acct, nil},
		{"GET /api/v1/audit/verify", "GET", "/api/v1/audit/verify", "", acct, nil},
		{"POST /api/v1/rescan", "POST", "/api/v1/rescan", `{"all":true}`, acct, nil},
		{"GET /api/v1/export", "GET", "/api/v1/export", "", acct, nil},
		{"POST /api/v1/export", "POST", "/api/v1/export", `{"have":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}`, acct, nil},
		{"GET /api/v1/inventory", "GET", "/api/v1/inventory", "", acct, nil},
		{"POST /api/v1/import", "POST", "/api/v1/import", "", [5][]int{w(401), w(403), w(403), w(403), w(400)}, nil},
		{"GET /api/v1/tokens", "GET", "/api/v1/tokens", "", anyone, nil},
		{"GET /api/v1/tokens?user=erin", "GET", "/api/v1/tokens?user=erin", "", acct, nil},
		// Another user's token: not found to everyone but a site
		// administrator, and it still works afterwards.
		{"DELETE /api/v1/tokens/{id}", "DELETE", "/api/v1/tokens/" + strconv.FormatInt(erin.ID, 10), "", [5][]int{w(401), w(404), w(404), w(404), w(ok)}, func(t *testing.T) {
			if !erinWorks() {
				t.Error("erin's token stopped working after others tried to revoke it")
			}
		}},
		{"PATCH /api/v1/users/{user}", "PATCH", "/api/v1/users/t-patch", `{"disabled":true}`, acct, nil},
		{"DELETE /api/v1/users/{user}", "DELETE", "/api/v1/users/t-remove", "", acct, nil},
		{"POST /api/v1/users/{user}/password", "POST", "/api/v1/users/t-reset/password", `{"password":"another-horse-battery"}`, acct, nil},
		{"DELETE /api/v1/users/{user}/mfa", "DELETE", "/api/v1/users/t-mfa/mfa", "", acct, nil},
		{"DELETE /api/v1/groups/{group}/members/{user}", "DELETE", "/api/v1/groups/g1/members/t-member", "", acct, nil},
		// Everyone changes their own password (keeping this session).
		{"POST /api/v1/password", "POST", "/api/v1/password", `{"current":"correct-horse-battery","password":"another-horse-battery"}`, anyone, nil},
		{"/api/", "GET", "/api/v1/nothing", "", [5][]int{w(404), w(404), w(404), w(404), w(404)}, nil},
		{"/v2/", "GET", "/v2/", "", [5][]int{w(401), w(ok), w(ok), w(ok), w(ok)}, nil},
		{"/v2", "GET", "/v2", "", [5][]int{w(401), w(301), w(301), w(301), w(301)}, nil},
		// Everyone confirms the MFA enrolment above with its current code
		//, after the password change, which would then need one.
		{"POST /api/v1/mfa/confirm", "POST", "/api/v1/mfa/confirm", "", anyone, nil},
		// Last: it ends each caller's session.
		{"POST /api/v1/logout", "POST", "/api/v1/logout", "", anyone, nil},
	}

	registered := registeredRoutes(t)
	var covered []string
	for _, r := range rows {
		covered = append(covered, r.pattern)
	}
	for _, p := range registered {
		if !slices.Contains(covered, p) {
			t.Errorf("route %q has no row in TestRouteAuthorization: add one", p)
		}
	}

	var enrolled [5]hub.MFAEnrollment
	for _, r := range rows {
		for i, role := range roles {
			if i == 4 && r.before != nil {
				r.before(t)
			}
			body, out := r.body, any(nil)
			switch r.path {
			case "/api/v1/mfa/enroll":
				out = &enrolled[i]
			case "/api/v1/mfa/confirm":
				if i == 0 {
					break
				}
				code, err := hub.TOTPCode(enrolled[i].Secret, hub.TOTPStep(time.Now()))
				if err != nil {
					t.Fatal(err)
				}
				body = fmt.Sprintf(`{"otp":%q}`, code)
			}
			code := call(t, u.url, tokens[role], r.method, r.path, body, out)
			if !matches(code, r.want[i]) {
				name := role
				if name == "" {
					name = "anonymous"
				}
				t.Errorf("%s %s as %s: %d, want %v", r.method, r.path, name, code, r.want[i])
			}
		}
	}
	if erinWorks() {
		t.Error("erin's token still works after the site administrator revoked it")
	}
}

func matches(code int, want []int) bool {
	for _, c := range want {
		switch {
		case c == ok && code/100 == 2, c == code:
			return true
		}
	}
	return false
}

// call sends one request with the bearer token (none if ""), decodes a
// 2xx JSON answer into out if not nil and returns the status.
func call(t *testing.T, base, tok, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// registeredRoutes reads the patterns the hub's source registers with
// HandleFunc or Handle, but the web UI's (/ui/ and the root redirect).
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) != 2 {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := c.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p, "/ui") && !strings.HasSuffix(p, " /{$}") {
				out = append(out, p)
			}
			return true
		})
	}
	if len(out) < 30 {
		t.Fatalf("found only %d routes in the hub's source: %q", len(out), out)
	}
	return out
}
