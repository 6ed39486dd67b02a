package hub_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/hub"
)

// ScreenshotEnv names a file the browser test copies its screenshot of
// the package page to (for people to look at).
const ScreenshotEnv = "SKIFF_UI_SCREENSHOT"

// findBrowser returns chromedriver and the Chromium binary, skipping
// the test when either is missing, unless $CI is set (CI installs them:
// .ci/run), where that fails it.
func findBrowser(t *testing.T) (driver, browser string) {
	t.Helper()
	driver, _ = exec.LookPath("chromedriver")
	for _, c := range []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			browser = p
			break
		}
	}
	if driver == "" || browser == "" {
		msg := "chromium and chromedriver are needed for the browser test: apt-get install chromium chromium-driver"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return driver, browser
}

// webDriver drives a browser through the W3C WebDriver protocol.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:PORT
	session string
	log     *fixture.LockedBuffer
}

// Browser test deadlines: generous, as the machine may be busy (a
// chromium start on a loaded 2-core CI machine takes many seconds); they
// only delay a failure.
const (
	driverReadyTimeout = 90 * time.Second
	elementTimeout     = 45 * time.Second
	pageLoadTimeout    = 90 * time.Second
)

// startWebDriver starts chromedriver on a free 127.0.0.1 port and a
// headless Chromium session; both stop when the test ends. A port taken
// by another process between choosing and binding it makes chromedriver
// exit: it is started again on another port.
func startWebDriver(t *testing.T) *webDriver {
	t.Helper()
	driverPath, browser := findBrowser(t)
	var d *webDriver
	for attempt := 1; d == nil; attempt++ {
		d = launchDriver(t, driverPath)
		if d == nil && attempt == 3 {
			t.Fatal("chromedriver exited at start three times (ports taken?)")
		}
	}
	profile := t.TempDir()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": browser,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--no-proxy-server", "--window-size=1280,1400", "--user-data-dir=" + profile},
		},
	}}}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	d.call(http.MethodPost, "/session", caps, &s)
	d.session = "/session/" + s.SessionID
	t.Cleanup(func() { d.try(http.MethodDelete, d.session, nil, nil) })
	d.call(http.MethodPost, d.session+"/timeouts", map[string]int{"pageLoad": int(pageLoadTimeout / time.Millisecond), "implicit": 0}, nil)
	return d
}

// launchDriver starts chromedriver on a free port and waits until it is
// ready; nil when it exited first (its port was taken meanwhile).
func launchDriver(t *testing.T, driverPath string) *webDriver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	log := &fixture.LockedBuffer{}
	cmd := exec.Command(driverPath, fmt.Sprintf("--port=%d", port), "--allowed-ips=127.0.0.1", "--log-level=WARNING")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromedriver: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	d := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: log}
	deadline := time.Now().Add(driverReadyTimeout)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		err := d.try(http.MethodGet, "/status", nil, &st)
		select {
		case <-exited:
			t.Logf("chromedriver on port %d exited at start:\n%s", port, log.String())
			return nil
		default:
		}
		if err == nil && st.Ready {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver did not become ready in %s:\n%s", driverReadyTimeout, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// try sends one command and decodes its "value" into out.
func (d *webDriver) try(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (d *webDriver) call(method, path string, body, out any) {
	d.t.Helper()
	if err := d.try(method, path, body, out); err != nil {
		d.t.Fatalf("webdriver: %v\nchromedriver log:\n%s", err, d.log.String())
	}
}

func (d *webDriver) open(url string) {
	d.t.Helper()
	d.call(http.MethodPost, d.session+"/url", map[string]string{"url": url}, nil)
}

func (d *webDriver) url() string {
	d.t.Helper()
	var u string
	d.call(http.MethodGet, d.session+"/url", nil, &u)
	return u
}

func (d *webDriver) source() string {
	d.t.Helper()
	var s string
	d.call(http.MethodGet, d.session+"/source", nil, &s)
	return s
}

// find waits up to elementTimeout for an element matching a CSS selector.
func (d *webDriver) find(css string) string {
	d.t.Helper()
	deadline := time.Now().Add(elementTimeout)
	for {
		var el map[string]string
		err := d.try(http.MethodPost, d.session+"/element", map[string]string{"using": "css selector", "value": css}, &el)
		if err == nil {
			for _, id := range el {
				return id
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no element %s on %s: %v\n%s", css, d.url(), err, d.source())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *webDriver) typeInto(css, text string) {
	d.t.Helper()
	d.call(http.MethodPost, d.session+"/element/"+d.find(css)+"/value", map[string]string{"text": text}, nil)
}

func (d *webDriver) click(css string) {
	d.t.Helper()
	d.call(http.MethodPost, d.session+"/element/"+d.find(css)+"/click", map[string]any{}, nil)
}

// waitFor waits up to elementTimeout for the page source to contain s.
func (d *webDriver) waitFor(s string) {
	d.t.Helper()
	deadline := time.Now().Add(elementTimeout)
	for !strings.Contains(d.source(), s) {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s never showed %q:\n%s", d.url(), s, d.source())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *webDriver) screenshot(path string) {
	d.t.Helper()
	var b64 string
	d.call(http.MethodGet, d.session+"/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		d.t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// TestUIBrowser has a second administrator review a package in a real
// headless Chromium: log in through the form, search, open the package,
// click Approve; the hub then holds the approval and its audit entry.
func TestUIBrowser(t *testing.T) {
	wd := startWebDriver(t)
	uh := newUIHub(t, nil)
	shop := uh.publish(t, "shop", "1.2.0", "1.3.0")
	if shop.Status != hub.StatusPending {
		t.Fatalf("shop is %s (gates %+v), want pending", shop.Status, shop.Gates)
	}
	shopPath := "/ui/packages/acme/shop/1.2.0"

	// Anonymous: the package page sends the browser to the login form.
	wd.open(uh.url + shopPath)
	if u := wd.url(); !strings.HasPrefix(u, uh.url+"/ui/login?next=") {
		t.Fatalf("anonymous GET %s ended at %s, want the login form", shopPath, u)
	}
	if src := wd.source(); strings.Contains(src, "the shop package") {
		t.Fatal("the login page shows the package")
	}

	// Bob logs in through the form and lands on the package list.
	wd.open(uh.url + "/")
	wd.typeInto("#username", "bob")
	wd.typeInto("#password", uiPassword)
	wd.click("#login")
	wd.waitFor("Logged in as <strong>bob</strong>")
	if u := wd.url(); u != uh.url+"/ui/" {
		t.Errorf("after login: %s, want %s/ui/", u, uh.url)
	}

	// Search, then open the package.
	wd.typeInto("#q", "shop")
	wd.click("#search")
	wd.waitFor(`value="shop"`)
	wd.click(`a[href="` + shopPath + `"]`)
	wd.waitFor("pending approval")
	src := wd.source()
	for _, want := range []string{"registry.example/acme/shop:1.2.0", "signed by", `<th scope="col">npm</th>`, `id="approve"`} {
		if !strings.Contains(src, want) {
			t.Errorf("the package page lacks %q", want)
		}
	}
	shot := filepath.Join(t.TempDir(), "package.png")
	wd.screenshot(shot)
	if dst := os.Getenv(ScreenshotEnv); dst != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", dst)
	}

	// Approve.
	wd.typeInto("#comment", "checked in the browser")
	wd.click("#approve")
	wd.waitFor("You approved this package.")
	if !strings.Contains(wd.source(), `id="status">approved<`) {
		t.Errorf("the page does not show the package approved")
	}
	p, err := uh.hub.Store().Package(context.Background(), "acme", "shop", "1.2.0")
	if err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("after clicking Approve: %v %+v", err, p)
	}
	if len(p.Approvals) != 1 || p.Approvals[0].User != "bob" || p.Approvals[0].Comment != "checked in the browser" {
		t.Errorf("approvals %+v", p.Approvals)
	}
	if !auditHas(t, uh.hub, "bob", hub.ActionApprove, "acme/shop:1.2.0") {
		t.Error("the audit log has no approval by bob")
	}
	if !auditHas(t, uh.hub, "bob", hub.ActionLogin, "bob") {
		t.Error("the audit log has no web login by bob")
	}

	// Log out: the package page asks for a login again.
	wd.click("header form.logout button")
	wd.waitFor(`<label for="username">`)
	wd.open(uh.url + shopPath)
	if u := wd.url(); !strings.HasPrefix(u, uh.url+"/ui/login?next=") {
		t.Errorf("after logout, GET %s ended at %s", shopPath, u)
	}
}
