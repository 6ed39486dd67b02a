package oci

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/skiffhq/skiff/internal/endpoint"
)

// DefaultRetries is the number of retries of a failed request when
// RemoteOptions.Retries is zero.
const DefaultRetries = 3

// retryBackoff is the first wait before a retry; each further retry waits
// twice as long, up to retryMaxWait.
var (
	retryBackoff = 100 * time.Millisecond
	retryMaxWait = 5 * time.Second
)

// RemoteOptions says how to reach registries. The zero value talks HTTPS to
// every registry except loopback ones, with credentials from the Docker
// config file.
type RemoteOptions struct {
	// Schemes fixes how hosts (host[:port]) are reached: endpoint.HTTPS
	// (TLS) or endpoint.HTTP (plain HTTP). Any other host speaks TLS,
	// except a loopback one (127.0.0.1, localhost, ::1) for which neither
	// CAFile nor Insecure asks for TLS. An address written with a scheme
	// (https://127.0.0.1:5000) is added by WithAddress.
	Schemes map[string]string
	// Insecure lists hosts (host or host:port) whose TLS certificate is
	// not verified.
	Insecure []string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// DockerConfig is the path of a Docker config.json holding
	// credentials. Default: $DOCKER_CONFIG/config.json, else
	// ~/.docker/config.json.
	DockerConfig string
	// Username and Password, when set, are used for every registry and
	// take precedence over DockerConfig.
	Username, Password string
	// Mirrors maps a registry host to the host[/prefix] to use instead,
	// e.g. "docker.io" → "127.0.0.1:5000/mirror".
	Mirrors map[string]string
	// Retries is how often a request failing with a transient error (5xx,
	// 429, connection reset) is retried with exponential backoff.
	// Zero means DefaultRetries; negative means never.
	Retries int
	// UserAgent is sent with every request when set.
	UserAgent string
}

func (o RemoteOptions) retries() int {
	switch {
	case o.Retries < 0:
		return 0
	case o.Retries == 0:
		return DefaultRetries
	}
	return o.Retries
}

// WithAddress returns o with a.Host reached as a's scheme says; an
// address without a scheme leaves o as it is. o's Schemes are copied,
// not changed.
func (o RemoteOptions) WithAddress(a endpoint.Address) RemoteOptions {
	if a.Scheme == "" {
		return o
	}
	m := make(map[string]string, len(o.Schemes)+1)
	maps.Copy(m, o.Schemes)
	m[a.Host] = a.Scheme
	o.Schemes = m
	return o
}

// PlainHTTP reports whether host (host[:port]) is reached over plain
// HTTP: as Schemes says, else only a loopback host for which neither
// CAFile nor Insecure asks for TLS.
func (o RemoteOptions) PlainHTTP(host string) bool {
	host = strings.ToLower(host)
	if s, ok := o.Schemes[host]; ok {
		return s == endpoint.HTTP
	}
	tls := o.CAFile != "" || slices.ContainsFunc(o.Insecure, func(h string) bool {
		return strings.EqualFold(h, host) || strings.EqualFold(h, hostname(host))
	})
	return endpoint.Address{Host: host}.PlainHTTP(tls)
}

// hostname is host without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// client is the shared HTTP and auth state of one Pull, Push or listing.
type client struct {
	o    RemoteOptions
	auth *auth.Client
	// cfgPath is the Docker config file credentials are read from ("" with
	// static credentials).
	cfgPath string
}

// DockerConfigPath returns the Docker config file that credentials are
// read from: o.DockerConfig (a file, or a directory holding config.json),
// else $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DockerConfigPath(o RemoteOptions) string {
	if o.DockerConfig != "" {
		if st, err := os.Stat(o.DockerConfig); err == nil && st.IsDir() {
			return filepath.Join(o.DockerConfig, "config.json")
		}
		return o.DockerConfig
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "config.json")
	}
	return filepath.Join(home, ".docker", "config.json")
}

// annotate adds to an authorization failure where credentials were looked
// up, so that the user fixes the right file.
func (c *client) annotate(err error) error {
	if err == nil || !errors.Is(err, ErrUnauthorized) {
		return err
	}
	if c.cfgPath == "" {
		return fmt.Errorf("%w (with the username and password given)", err)
	}
	return fmt.Errorf("%w (credentials were looked up in %s)", err, c.cfgPath)
}

func newClient(o RemoteOptions) (*client, error) {
	tr, err := transport(o)
	if err != nil {
		return nil, err
	}
	cred, err := credential(o)
	if err != nil {
		return nil, err
	}
	ac := &auth.Client{
		Client:     &http.Client{Transport: tr},
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{},
	}
	if o.UserAgent != "" {
		ac.SetUserAgent(o.UserAgent)
	}
	c := &client{o: o, auth: ac}
	if o.Username == "" && o.Password == "" {
		c.cfgPath = DockerConfigPath(o)
	}
	return c, nil
}

// transport builds the HTTP stack: proxy from the environment, TLS roots
// and per-host verification, and retries of transient failures.
func transport(o RemoteOptions) (http.RoundTripper, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = http.ProxyFromEnvironment
	base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := CertPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		base.TLSClientConfig.RootCAs = pool
	}
	var rt http.RoundTripper = base
	if len(o.Insecure) > 0 {
		insecure := base.Clone()
		insecure.TLSClientConfig.InsecureSkipVerify = true
		rt = &hostRouter{hosts: o.Insecure, insecure: insecure, secure: base}
	}
	retries := o.retries()
	return &retry.Transport{
		Base: rt,
		Policy: func() retry.Policy {
			return &retry.GenericPolicy{
				Retryable: retry.DefaultPredicate,
				Backoff:   retry.ExponentialBackoff(retryBackoff, 2, 0.1),
				MinWait:   retryBackoff,
				MaxWait:   retryMaxWait,
				MaxRetry:  retries,
			}
		},
	}, nil
}

// hostRouter sends requests for the listed hosts through a transport that
// skips certificate verification.
type hostRouter struct {
	hosts            []string
	insecure, secure http.RoundTripper
}

func (h *hostRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, host := range h.hosts {
		if host == req.URL.Host || host == req.URL.Hostname() {
			return h.insecure.RoundTrip(req)
		}
	}
	return h.secure.RoundTrip(req)
}

func credential(o RemoteOptions) (auth.CredentialFunc, error) {
	if o.Username != "" || o.Password != "" {
		c := auth.Credential{Username: o.Username, Password: o.Password}
		return func(context.Context, string) (auth.Credential, error) { return c, nil }, nil
	}
	var (
		store *credentials.DynamicStore
		err   error
	)
	if o.DockerConfig != "" {
		store, err = credentials.NewStore(DockerConfigPath(o), credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("loading registry credentials: %w: fix or remove the Docker config file", err)
	}
	return credentials.Credential(store), nil
}

// repository returns a client for host/repo.
func (c *client) repository(host, repo string) *remote.Repository {
	return &remote.Repository{
		Client:    c.auth,
		Reference: registry.Reference{Registry: host, Repository: repo},
		PlainHTTP: c.o.PlainHTTP(host),
	}
}

// registry returns a client for the registry at host.
func (c *client) registry(host string) *remote.Registry {
	r := &remote.Registry{}
	r.Reference = registry.Reference{Registry: host}
	r.Client = c.auth
	r.PlainHTTP = c.o.PlainHTTP(host)
	return r
}

// explain turns a transport error into one that says what went wrong and
// how to fix it. what names the image or registry ("pulling docker.io/x:1"),
// host the registry actually contacted.
func explain(what, host string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var se *sourceError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w: the source is incomplete or damaged; verify it", what, err)
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%s: %w at %s: no credentials: run docker login %s, or pass --docker-config naming the config file (or its directory) that holds them",
			what, ErrUnauthorized, host, host)
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w at %s: %w: run docker login %s, or pass --docker-config naming the config file (or its directory) that holds its credentials",
				what, ErrUnauthorized, host, err, host)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w at %s: %w: check the name and tag", what, ErrNotFound, host, err)
		case http.StatusBadRequest:
			if resp.URL != nil && resp.URL.Scheme == endpoint.HTTP {
				return fmt.Errorf("%s: registry %s: %w: if it speaks TLS (skiff registry serve --tls-cert or --self-signed), write https://%s or pass its CA certificate with --ca-file",
					what, host, err, host)
			}
		}
		return fmt.Errorf("%s: registry %s: %w", what, host, err)
	}
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%s: %w at %s: %w: check the name and tag", what, ErrNotFound, host, err)
	}
	if IsTLSError(err) {
		return fmt.Errorf("%s: %w with %s: %w: pass the registry's CA certificate with --ca-file, list it in --insecure-registry, or write http://%s (or --plain-http %s) if it serves plain HTTP",
			what, ErrTLS, host, err, host, host)
	}
	if isUnreachable(err) {
		return fmt.Errorf("%s: %w %s: %w: check the address, --registry-mirror, or HTTPS_PROXY", what, ErrUnreachable, host, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// IsTLSError reports whether err is a TLS failure: an untrusted or
// mismatching certificate, or a TLS handshake with a plain-HTTP server.
func IsTLSError(err error) bool {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		record      tls.RecordHeaderError
		verify      *tls.CertificateVerificationError
		alertRemote tls.AlertError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &record), errors.As(err, &verify), errors.As(err, &alertRemote):
		return true
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

func isUnreachable(err error) bool {
	var (
		dns *net.DNSError
		op  *net.OpError
	)
	switch {
	case errors.As(err, &dns), errors.As(err, &op),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	}
	return false
}

// transient reports whether a failed transfer is worth retrying.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		c := resp.StatusCode
		return c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && ne.Timeout())
}

// withRetry runs op until it succeeds, fails for good, or the retries are
// used up, waiting with exponential backoff between attempts.
func withRetry(ctx context.Context, retries int, op func() error) error {
	wait := retryBackoff
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= retries || !transient(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, retryMaxWait)
	}
}

// CertPool returns the system roots plus the PEM certificates in caFile.
func CertPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate: pass the server's CA certificate", caFile)
	}
	return pool, nil
}
