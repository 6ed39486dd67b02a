package hub_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// formClient is a browser without JavaScript: it keeps cookies, sends
// an Origin header with forms like browsers do, and does not follow
// redirects, so tests see them.
type formClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newFormClient(t *testing.T, base string) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (f *formClient) do(req *http.Request) page {
	f.t.Helper()
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), header: resp.Header}
}

func (f *formClient) get(path string) page {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.base+path, nil)
	return f.do(req)
}

// post submits a form; origin "" sends neither Origin nor Referer.
func (f *formClient) post(path, origin string, form url.Values) page {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return f.do(req)
}

func (f *formClient) login(user, otp string) page {
	f.t.Helper()
	return f.post("/ui/login", f.base, url.Values{"username": {user}, "password": {uiPassword}, "otp": {otp}, "next": {"/ui/"}})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", p.body)
	}
	return m[1]
}

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func TestUIReviewWithoutJavaScript(t *testing.T) {
	clk := &fixedClock{t: time.Now().Truncate(time.Second)}
	uh := newUIHub(t, clk.Now)
	ctx := context.Background()
	shop := uh.publish(t, "shop", "1.2.0", "1.3.0")
	if shop.Status != hub.StatusPending {
		t.Fatalf("shop is %s (gates %+v), want pending", shop.Status, shop.Gates)
	}
	legacy := uh.publish(t, "legacy", "0.9.0", "1.1.0")
	if legacy.Status != hub.StatusRejected {
		t.Fatalf("legacy is %s (gates %+v), want rejected by the vulnerability gate", legacy.Status, legacy.Gates)
	}
	shopPath := "/ui/packages/acme/shop/1.2.0"

	anon := newFormClient(t, uh.url)
	if p := anon.get("/"); p.status != http.StatusFound || p.location != "/ui/" {
		t.Errorf("GET /: %d %q, want a redirect to /ui/", p.status, p.location)
	}
	p := anon.get(shopPath)
	if p.status != http.StatusSeeOther || p.location != "/ui/login?next="+url.QueryEscape(shopPath) {
		t.Fatalf("anonymous GET of a package: %d %q, want a redirect to the login form", p.status, p.location)
	}
	p = anon.get("/ui/login?next=" + url.QueryEscape(shopPath))
	for _, want := range []string{`<label for="username">`, `<label for="password">`, `value="` + shopPath + `"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("login form lacks %s", want)
		}
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(p.body, `id="otp"`) {
		t.Error("the login form asks for a one-time code before it knows the user")
	}
	if p := anon.get("/ui/static/style.css"); p.status != http.StatusOK || !strings.Contains(p.header.Get("Content-Type"), "text/css") {
		t.Errorf("style sheet: %d %s", p.status, p.header.Get("Content-Type"))
	}

	// Logins: cross-site and wrong ones are refused, next is kept local.
	if p := anon.post("/ui/login", "", url.Values{"username": {"alice"}, "password": {uiPassword}}); p.status != http.StatusForbidden {
		t.Errorf("login without Origin: %d, want 403", p.status)
	}
	if p := anon.post("/ui/login", "http://evil.example", url.Values{"username": {"alice"}, "password": {uiPassword}}); p.status != http.StatusForbidden {
		t.Errorf("cross-site login: %d, want 403", p.status)
	}
	if p := anon.post("/ui/login", uh.url, url.Values{"username": {"alice"}, "password": {"nope"}}); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "wrong") {
		t.Errorf("wrong password: %d", p.status)
	}
	if !auditHas(t, uh.hub, "alice", hub.ActionLoginFailed, "alice") {
		t.Error("the failed web login is not audited")
	}

	alice := newFormClient(t, uh.url)
	p = alice.post("/ui/login", uh.url, url.Values{"username": {"alice"}, "password": {uiPassword}, "next": {"https://evil.example/"}})
	if p.status != http.StatusSeeOther || p.location != "/ui/" {
		t.Fatalf("alice's login: %d %q, want a redirect to /ui/", p.status, p.location)
	}
	setCookie := p.header.Get("Set-Cookie")
	for _, want := range []string{"skiff_session=skf_", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %s", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") {
		t.Errorf("session cookie %q is Secure over plain HTTP", setCookie)
	}

	// The uploader sees the package but no usable Approve button, and
	// posting the form anyway is refused by the hub's rules.
	p = alice.get(shopPath)
	if p.status != http.StatusOK {
		t.Fatalf("alice GET %s: %d\n%s", shopPath, p.status, p.body)
	}
	for _, want := range []string{
		"pending approval", `id="uploader-note"`, `id="reject"`, "the shop package",
		"registry.example/acme/shop:1.2.0", "linux/amd64", "<td>0.1.0</td>", // contents
		"signed by", "0 finding(s)", // gates
		`<th scope="col">deb</th>`, `<th scope="col">npm</th>`, // SBOM summary
		"Approvals: 0 of 1",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("alice's package page lacks %q", want)
		}
	}
	if strings.Contains(p.body, `id="approve"`) {
		t.Error("the uploader is offered Approve")
	}
	aliceCSRF := csrfOf(t, p)
	if p := alice.post(shopPath+"/approve", uh.url, url.Values{"csrf": {aliceCSRF}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "cannot approve") {
		t.Errorf("the uploader approving through the form: %d, want 403 from the hub's rules", p.status)
	}

	// A second admin: CSRF and origin checks first.
	bob := newFormClient(t, uh.url)
	if p := bob.login("bob", ""); p.status != http.StatusSeeOther {
		t.Fatalf("bob's login: %d\n%s", p.status, p.body)
	}
	p = bob.get(shopPath)
	if !strings.Contains(p.body, `id="approve"`) || strings.Contains(p.body, `id="uploader-note"`) {
		t.Fatalf("bob is not offered Approve:\n%s", p.body)
	}
	bobCSRF := csrfOf(t, p)
	if bobCSRF == aliceCSRF {
		t.Error("two sessions share a CSRF token")
	}
	for _, c := range []struct {
		name, origin string
		form         url.Values
	}{
		{"no token", uh.url, url.Values{}},
		{"another session's token", uh.url, url.Values{"csrf": {aliceCSRF}}},
		{"forged token", uh.url, url.Values{"csrf": {"x" + bobCSRF[1:]}}},
		{"cross-site", "http://evil.example", url.Values{"csrf": {bobCSRF}}},
		{"no Origin or Referer", "", url.Values{"csrf": {bobCSRF}}},
	} {
		if p := bob.post(shopPath+"/approve", c.origin, c.form); p.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, p.status)
		}
	}
	if pkg, _ := uh.hub.Store().Package(ctx, "acme", "shop", "1.2.0"); pkg.Status != hub.StatusPending || len(pkg.Approvals) != 0 {
		t.Fatalf("refused requests changed the package: %s %+v", pkg.Status, pkg.Approvals)
	}

	// Search and status filter.
	p = bob.get("/ui/?q=shop")
	if !strings.Contains(p.body, `href="`+shopPath+`"`) || strings.Contains(p.body, "acme/legacy") {
		t.Errorf("search for shop:\n%s", p.body)
	}
	p = bob.get("/ui/?status=rejected")
	if strings.Contains(p.body, "acme/shop") || !strings.Contains(p.body, "acme/legacy") {
		t.Errorf("rejected packages:\n%s", p.body)
	}
	// The rejected package shows the scan's blocking findings.
	p = bob.get("/ui/packages/acme/legacy/0.9.0")
	for _, want := range []string{"rejected", "Vulnerability scan", "GHSA-test-0001", "left-pad", "1.1.0", "1.3.0", "<strong>high</strong>"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("legacy's page lacks %q", want)
		}
	}
	if strings.Contains(p.body, `id="approve"`) || strings.Contains(p.body, `id="reject"`) {
		t.Error("a rejected package offers review buttons")
	}

	// A reader cannot see a pending package, nor post to it.
	carol := newFormClient(t, uh.url)
	carol.login("carol", "")
	if p := carol.get(shopPath); p.status != http.StatusNotFound {
		t.Errorf("reader GET of a pending package: %d, want 404", p.status)
	}
	if p := carol.get("/ui/"); strings.Contains(p.body, "acme/shop") {
		t.Error("the reader's list shows a pending package")
	}

	// A quarantined package (gates not run): no contents yet, Reject only.
	uh.publish(t, "draft", "0.1.0", "1.3.0", hubclient.PushOptions{NoSubmit: true})
	if q, err := uh.hub.Store().Package(ctx, "acme", "draft", "0.1.0"); err != nil || q.Status != hub.StatusQuarantined {
		t.Fatalf("draft: %v %+v", err, q)
	}
	p = bob.get("/ui/packages/acme/draft/0.1.0")
	if p.status != http.StatusOK || !strings.Contains(p.body, "have not run yet") || strings.Contains(p.body, `id="approve"`) || !strings.Contains(p.body, `id="reject"`) {
		t.Errorf("quarantined package page: %d\n%s", p.status, p.body)
	}
	if p := bob.get("/ui/packages/acme/nope/1.0.0"); p.status != http.StatusNotFound {
		t.Errorf("missing package: %d", p.status)
	}

	// Bob approves through the form.
	p = bob.post(shopPath+"/approve", uh.url, url.Values{"csrf": {bobCSRF}, "comment": {"reviewed in the UI"}})
	if p.status != http.StatusSeeOther || p.location != shopPath+"?done=approve" {
		t.Fatalf("approve: %d %q\n%s", p.status, p.location, p.body)
	}
	if pkg, _ := uh.hub.Store().Package(ctx, "acme", "shop", "1.2.0"); pkg.Status != hub.StatusApproved {
		t.Fatalf("after approving: %s", pkg.Status)
	}
	if !auditHas(t, uh.hub, "bob", hub.ActionApprove, "acme/shop:1.2.0") {
		t.Error("the approval is not audited")
	}
	if p := bob.get(shopPath + "?done=approve"); !strings.Contains(p.body, "You approved this package.") || !strings.Contains(p.body, "reviewed in the UI") {
		t.Error("the page does not confirm the approval")
	}

	// Logout revokes the session.
	cookies := bob.c.Jar.Cookies(mustURL(t, uh.url))
	if p := bob.post("/ui/logout", uh.url, url.Values{"csrf": {bobCSRF}}); p.status != http.StatusSeeOther || p.location != "/ui/login" {
		t.Fatalf("logout: %d %q", p.status, p.location)
	}
	replay := newFormClient(t, uh.url)
	replay.c.Jar.SetCookies(mustURL(t, uh.url), cookies)
	if p := replay.get(shopPath); p.status != http.StatusSeeOther {
		t.Errorf("the logged-out session still works: %d", p.status)
	}
	if !auditHas(t, uh.hub, "bob", hub.ActionLogout, "bob") {
		t.Error("the logout is not audited")
	}

	// MFA: the form asks for the code, then accepts it.
	st := uh.hub.Store()
	secret, err := st.EnrollTOTP(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	step := hub.TOTPStep(clk.Now())
	code, _ := hub.TOTPCode(secret, step-1)
	if err := st.ConfirmTOTP(ctx, "carol", code); err != nil {
		t.Fatal(err)
	}
	mfa := newFormClient(t, uh.url)
	p = mfa.login("carol", "")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `<label for="otp">`) || !strings.Contains(p.body, `value="carol"`) {
		t.Fatalf("MFA login without a code: %d\n%s", p.status, p.body)
	}
	if p := mfa.login("carol", "000000"); p.status != http.StatusUnauthorized {
		t.Errorf("MFA login with a wrong code: %d", p.status)
	}
	code, _ = hub.TOTPCode(secret, step)
	if p := mfa.login("carol", code); p.status != http.StatusSeeOther {
		t.Fatalf("MFA login with the code: %d\n%s", p.status, p.body)
	}
	if p := mfa.get("/ui/"); p.status != http.StatusOK || !strings.Contains(p.body, "<strong>carol</strong>") {
		t.Errorf("after the MFA login: %d", p.status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
