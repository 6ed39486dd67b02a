package cli

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/registry"
)

// startTLSRegistry runs the embedded registry with a self-signed
// certificate on 127.0.0.1 for the scripts: its address and CA file.
func startTLSRegistry(t *testing.T) (host, caFile string) {
	t.Helper()
	srv := fixture.StartRegistry(t, registry.Options{SelfSigned: true})
	return srv.Addr(), srv.CACertFile()
}

// startTLSHub runs a hub serving TLS (hub serve --tls-cert) on 127.0.0.1
// for the scripts: its address, CA file, the password of its site
// administrator "root", and its trust directory.
func startTLSHub(t *testing.T) (host, caFile, adminPassword, trustDir string) {
	t.Helper()
	ctx := context.Background()
	cert, key, err := registry.SelfSignedCert(nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	trustDir = t.TempDir()
	h, err := hub.New(ctx, hub.Options{Root: t.TempDir(), TrustDir: trustDir})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := h.Store().InitAdmin(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Serve(sctx, ln, hub.ServeOptions{CertFile: cert, KeyFile: key}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
		h.Close()
	})
	return ln.Addr().String(), cert, pw, trustDir
}

// TestRegistryServeSelfSigned: registry serve --self-signed says where its
// CA certificate is; with it (--ca-file) a client reaches the registry on
// https://127.0.0.1:PORT, and without it is told to pass --ca-file.
func TestRegistryServeSelfSigned(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	var errb fixture.LockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Streams{In: strings.NewReader(""), Out: &errb, Err: &errb},
			[]string{"registry", "serve", "--self-signed", "--addr", "127.0.0.1:0", "--root", root})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	re := regexp.MustCompile(`registry listening on https://(\S+) .*\nCA certificate: (\S+) \(clients pass it: --ca-file `)
	var m []string
	for deadline := time.Now().Add(time.Minute); m == nil; m = re.FindStringSubmatch(errb.String()) {
		select {
		case code := <-done:
			t.Fatalf("registry serve exited with %d:\n%s", code, errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry serve printed no address and CA certificate:\n%s", errb.String())
		}
	}
	addr, ca := m[1], m[2]
	if want := filepath.Join(root, registry.CertFileName); ca != want {
		t.Fatalf("CA certificate %s, want %s", ca, want)
	}
	doctor := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := Run(t.Context(), Streams{In: strings.NewReader(""), Out: &out, Err: &out},
			append([]string{"doctor", "--skip-cluster", "--retries", "-1"}, args...))
		return code, out.String()
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		want string
	}{
		{"https with its CA", []string{"--registry", "https://" + addr + "/site", "--ca-file", ca}, true, "registry answers on /v2/"},
		{"CA file alone means TLS on loopback", []string{"--registry", addr, "--ca-file", ca}, true, "registry answers on /v2/"},
		{"https without the CA", []string{"--registry", "https://" + addr}, false, "--ca-file"},
		{"plain HTTP to TLS", []string{"--registry", addr}, false, "write https://" + addr},
		{"bad address", []string{"--registry", "ftp://" + addr}, false, `scheme "ftp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := doctor(tc.args...)
			if (code == 0) != tc.ok || !strings.Contains(out, tc.want) {
				t.Fatalf("doctor %v: exit %d, want ok=%v and %q in:\n%s", tc.args, code, tc.ok, tc.want, out)
			}
		})
	}
}
