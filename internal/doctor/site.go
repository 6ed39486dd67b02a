package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/oci"
)

// Free space below which the disk check warns and fails by default, in
// percent of the file system.
const (
	DefaultDiskWarnPercent = 15
	DefaultDiskFailPercent = 5
)

// checkRegistry checks that the registry answers on /v2/.
func checkRegistry(ctx context.Context, e *Env) []Result {
	if e.Registry == "" {
		return nil
	}
	reg, err := siteRegistry(e)
	if err != nil {
		return []Result{{Severity: Fail, Subject: e.Registry, Message: err.Error(), Fix: "pass --registry [https://|http://]HOST[:PORT][/PREFIX]"}}
	}
	host := reg.Host()
	if err := reg.Ping(ctx); err != nil {
		return []Result{{Severity: Fail, Subject: host, Message: err.Error(),
			Fix: "start the registry (skiff registry serve) or fix the address; check TLS: https://HOST and --ca-file for a TLS registry, --plain-http for a plain one"}}
	}
	return []Result{{Severity: OK, Subject: host, Message: "registry answers on /v2/"}}
}

// siteRegistry returns a handle on e.Registry, reached as its address
// says.
func siteRegistry(e *Env) (*oci.Registry, error) {
	a, err := endpoint.Parse(e.Registry)
	if err != nil {
		return nil, err
	}
	return oci.NewRegistry(a.Host, e.Remote.WithAddress(a))
}

// checkDisk checks the free space of the registry's storage directory.
func checkDisk(ctx context.Context, e *Env) []Result {
	if e.RegistryRoot == "" {
		return nil
	}
	subject := e.RegistryRoot
	measure := e.DiskSpace
	if measure == nil {
		measure = diskSpace
	}
	free, total, err := measure(e.RegistryRoot)
	if err != nil {
		return []Result{{Severity: Fail, Subject: subject, Message: err.Error(), Fix: "pass the --root the registry serves from"}}
	}
	pct := 100 * float64(free) / float64(max(total, 1))
	msg := fmt.Sprintf("%s free of %s (%.0f%%)", bytesize.Format(int64(free)), bytesize.Format(int64(total)), pct)
	fix := "free space: run skiff registry gc --registry HOST --root " + e.RegistryRoot + ", or grow the file system"
	switch {
	case pct < e.DiskFailPercent:
		return []Result{{Severity: Fail, Subject: subject, Message: msg + ": loads will fail", Fix: fix}}
	case pct < e.DiskWarnPercent:
		return []Result{{Severity: Warn, Subject: subject, Message: msg, Fix: fix}}
	}
	return []Result{{Severity: OK, Subject: subject, Message: msg}}
}

// checkHub checks the hub's /healthz.
func checkHub(ctx context.Context, e *Env) []Result {
	if e.Hub == "" {
		return nil
	}
	u := strings.TrimSuffix(e.Hub, "/") + "/healthz"
	fix := "check that the hub runs and that --hub is its base URL"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return []Result{{Severity: Fail, Subject: e.Hub, Message: err.Error(), Fix: "pass --hub as a URL, e.g. https://hub.internal:8443"}}
	}
	resp, err := e.HTTPClient.Do(req)
	if err != nil {
		if oci.IsTLSError(err) {
			fix = "pass the hub's CA certificate with --hub-ca-file (or --hub-insecure)"
		}
		return []Result{{Severity: Fail, Subject: e.Hub, Message: err.Error(), Fix: fix}}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("GET %s: %s", u, resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" && strings.Contains(string(body), "HTTP request to an HTTPS server") {
			return []Result{{Severity: Fail, Subject: e.Hub, Message: msg, Fix: "the hub speaks TLS: write --hub https://HOST:PORT, or pass its CA certificate with --hub-ca-file"}}
		}
		return []Result{{Severity: Fail, Subject: e.Hub, Message: msg, Fix: "see the hub's log; " + fix}}
	}
	return []Result{{Severity: OK, Subject: e.Hub, Message: "hub healthy"}}
}
