package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"skiff": func() {
			os.Exit(Run(context.Background(), Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.Args[1:]))
		},
	})
}

// TestScript runs the testscript files in testdata/script. $REG is a
// registry holding app:1 and job:1 (two platforms each) and pkgs:1; $AIRGAP is an
// empty one; $TLSREG an empty one serving TLS (CA in $TLSREG_CA); $HUB a
// hub and $TLSHUB one serving TLS (CA in $TLSHUB_CA).
func TestScript(t *testing.T) {
	reg := fixture.Registry(t)
	for i, r := range []string{"app:1", "job:1", "app:2"} {
		fixture.PushImage(t, reg+"/demo/"+r, fixture.ImageOptions{Layers: []int{2048}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: int64(i + 1)})
	}
	// demo/pkgs:1 holds real package databases (see sbomtest.Image).
	sbomtest.PushLayers(t, reg+"/demo/pkgs:1", "linux/amd64", sbomtest.Image(t))
	airgap := fixture.Registry(t)
	hubHost, hubPassword, hubTrust := startTestHub(t) // hub_test.go
	proxy := startProxy(t, proxiedHost, reg)
	tlsReg, tlsRegCA := startTLSRegistry(t)                         // tls_test.go
	tlsHub, tlsHubCA, tlsHubPassword, tlsHubTrust := startTLSHub(t) // tls_test.go
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("REG", reg)
			e.Setenv("AIRGAP", airgap)
			e.Setenv("HUB", hubHost)
			e.Setenv("HUB_ADMIN_PASSWORD", hubPassword)
			e.Setenv("HUB_TRUST", hubTrust)
			e.Setenv("PROXY", proxy)
			e.Setenv("PROXIED", proxiedHost)
			e.Setenv("TLSREG", tlsReg)
			e.Setenv("TLSREG_CA", tlsRegCA)
			e.Setenv("TLSHUB", tlsHub)
			e.Setenv("TLSHUB_CA", tlsHubCA)
			e.Setenv("TLSHUB_ADMIN_PASSWORD", tlsHubPassword)
			e.Setenv("TLSHUB_TRUST", tlsHubTrust)
			e.Setenv("SKIFF_TRUST_DIR", e.WorkDir+"/trust")
			e.Setenv("OTEL_TRACES_EXPORTER", "none")
			e.Setenv("HOME", e.WorkDir+"/home")
			return nil
		},
		UpdateScripts: os.Getenv("UPDATE_SCRIPTS") != "",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// envsubst FILE...: expand ${VAR} in files, in place.
			"envsubst": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, f := range args {
					data := ts.ReadFile(f)
					ts.Check(os.WriteFile(ts.MkAbs(f), []byte(os.Expand(data, ts.Getenv)), 0o644))
				}
			},
			// mode PERM FILE...: each FILE has permission bits PERM (octal).
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: mode PERM FILE...")
				}
				want, err := strconv.ParseUint(args[0], 8, 32)
				ts.Check(err)
				for _, f := range args[1:] {
					fi, err := os.Stat(ts.MkAbs(f))
					ts.Check(err)
					if got := fi.Mode().Perm(); (got == os.FileMode(want)) == neg {
						ts.Fatalf("%s has mode %#o (want %s%#o)", f, got, map[bool]string{true: "not ", false: ""}[neg], want)
					}
				}
			},
			// truncate-copy SRC DST: copy SRC without its last 1000 bytes.
			"truncate-copy": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: truncate-copy SRC DST")
				}
				data := ts.ReadFile(args[0])
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(data[:len(data)-1000]), 0o644))
			},
		},
	})
}

// proxiedHost is a registry name only the test proxy knows: requests for it
// reach the client only through HTTP_PROXY (no name is ever resolved).
const proxiedHost = "registry.proxied.test:5000"

// startProxy starts a forward HTTP proxy on 127.0.0.1 that sends requests
// for host to the registry at target and refuses everything else.
func startProxy(t *testing.T, host, target string) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host != host {
			http.Error(w, "this test proxy only forwards to "+host, http.StatusForbidden)
			return
		}
		w.Header().Set("X-Test-Proxy", "1")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
