package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// start runs a registry until the test ends.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.RootDir == "" {
		o.RootDir = t.TempDir()
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url, user, pass string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// pushBlobAndManifest uploads a config blob and an image manifest with
// plain HTTP requests, so the registry test needs no OCI client.
func pushBlobAndManifest(t *testing.T, c *http.Client, base, repo string) {
	t.Helper()
	cfg := []byte("{}")
	dgst := "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	resp, err := c.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("blob upload start: %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(cfg))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %s", resp.Status)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[]}`, dgst)
	req, _ = http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/v1", strings.NewReader(m))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest put: %s", resp.Status)
	}
}

func TestPlainHTTPCatalog(t *testing.T) {
	s := start(t, Options{})
	if s.TLS() || s.CACertPEM() != nil {
		t.Fatal("plain registry reports TLS")
	}
	base := "http://" + s.Addr()
	c := &http.Client{Timeout: 10 * time.Second}
	if code, _ := get(t, c, base+"/v2/", "", ""); code != http.StatusOK {
		t.Fatalf("GET /v2/ = %d", code)
	}
	for _, repo := range []string{"a/b/c/one", "two"} {
		pushBlobAndManifest(t, c, base, repo)
	}
	code, body := get(t, c, base+"/v2/_catalog", "", "")
	if code != http.StatusOK {
		t.Fatalf("catalog = %d", code)
	}
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(body, &cat); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cat.Repositories, ","), "a/b/c/one,two"; got != want {
		t.Fatalf("catalog = %q, want %q", got, want)
	}
	// Deletes are enabled (needed by garbage collection).
	req, _ := http.NewRequest(http.MethodDelete, base+"/v2/two/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE blob = %s, want 202", resp.Status)
	}
}

func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	s := start(t, Options{RootDir: dir, SelfSigned: true, Hosts: []string{"registry.example:5000"}})
	if !s.TLS() {
		t.Fatal("TLS() = false")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM is not PEM")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _ := get(t, c, "https://"+s.Addr()+"/v2/", "", ""); code != http.StatusOK {
		t.Fatalf("GET /v2/ over TLS = %d", code)
	}
	// Without the CA the handshake fails.
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get("https://" + s.Addr() + "/v2/"); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	block, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(block.Certificate[0])
	for _, h := range []string{"127.0.0.1", "localhost", "registry.example", "::1"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
}

func TestSelfSignedCertReuse(t *testing.T) {
	dir := t.TempDir()
	c1, _, err := SelfSignedCert(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	pem1, _ := os.ReadFile(c1)
	c2, _, err := SelfSignedCert([]string{"localhost"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	pem2, _ := os.ReadFile(c2)
	if !bytes.Equal(pem1, pem2) {
		t.Fatal("valid certificate was not reused")
	}
	c3, _, err := SelfSignedCert([]string{"other.example"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	pem3, _ := os.ReadFile(c3)
	if bytes.Equal(pem1, pem3) {
		t.Fatal("certificate reused although a new host was asked for")
	}
	if fi, _ := os.Stat(filepath.Join(dir, KeyFileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestHtpasswd(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Htpasswd: htpasswd})
	c := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		user, pass string
		want       int
	}{
		{"", "", http.StatusUnauthorized},
		{"alice", "wrong", http.StatusUnauthorized},
		{"alice", "s3cret", http.StatusOK},
	}
	for _, tt := range tests {
		if code, _ := get(t, c, "http://"+s.Addr()+"/v2/", tt.user, tt.pass); code != tt.want {
			t.Errorf("user %q pass %q: %d, want %d", tt.user, tt.pass, code, tt.want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    Options
	}{
		{"no root", Options{Addr: "127.0.0.1:0"}},
		{"cert without key", Options{RootDir: dir, Addr: "127.0.0.1:0", CertFile: "x"}},
		{"missing htpasswd", Options{RootDir: dir, Addr: "127.0.0.1:0", Htpasswd: filepath.Join(dir, "nope")}},
		{"bad cert", Options{RootDir: dir, Addr: "127.0.0.1:0", CertFile: filepath.Join(dir, "c"), KeyFile: filepath.Join(dir, "k")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(t.Context(), tt.o); err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestAddrInUse(t *testing.T) {
	s := start(t, Options{})
	_, err := New(t.Context(), Options{RootDir: t.TempDir(), Addr: s.Addr()})
	if err == nil || !strings.Contains(err.Error(), "listening on") {
		t.Fatalf("err = %v, want a listen error", err)
	}
}

func TestLoggerAndClose(t *testing.T) {
	var buf safeBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(t.Context(), Options{RootDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	c := &http.Client{Timeout: 10 * time.Second}
	get(t, c, "http://"+s.Addr()+"/v2/nothing/manifests/latest", "", "")
	s.Close()
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	if !strings.Contains(buf.String(), "manifest unknown") {
		t.Errorf("logger got no registry output:\n%s", buf.String())
	}
	// An ordinary 404 is logged for debugging, not as an error.
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, "manifest unknown") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a 404 was logged above debug level: %s", line)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
