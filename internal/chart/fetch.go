package chart

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/endpoint"
)

// maxDownload bounds any single download (index or chart).
const maxDownload = 256 << 20

// Source says where a chart comes from: exactly one of Path or Repo.
type Source struct {
	// Path is an absolute chart directory or .tgz file.
	Path string
	// Repo is an https:// (or http://) Helm repository URL, or
	// oci://host/path, the registry repository holding the chart.
	Repo string
	// Chart is the chart name in Repo.
	Chart string
	// Version is the chart version in Repo: exact, a semver constraint
	// (^1.2) or empty for the latest stable version.
	Version string
}

// FetchOptions tunes Fetch.
type FetchOptions struct {
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// InsecureSkipTLSVerify disables TLS certificate verification.
	InsecureSkipTLSVerify bool
	// PlainHTTP talks plain HTTP to oci:// registries. It is implied for
	// loopback hosts (127.0.0.1, ::1, localhost) unless CAFile or
	// InsecureSkipTLSVerify asks for TLS.
	PlainHTTP bool
	// RegistryConfig is a docker config.json with registry credentials for
	// oci:// sources.
	RegistryConfig string
	// CacheDir, if set, keeps charts downloaded from https repositories by
	// digest and reuses them when the repository index names the same
	// digest again.
	CacheDir string
}

// Fetch returns src as a self-contained chart archive.
//
// A local directory is loaded (honouring .helmignore); dependencies with a
// file:// repository are loaded from their directories and vendored under
// charts/, dependencies already in charts/ are kept, and other missing
// dependencies are fetched from their repository. The result is packaged
// deterministically: the same files give byte-identical archives. A local
// .tgz is loaded, completed the same way and repackaged.
//
// From an https repository, Fetch reads index.yaml, picks the version,
// downloads the chart and checks its digest; from oci:// it pulls with
// Helm's registry client. Remote archives are returned byte for byte as
// published unless dependencies had to be vendored into them.
func Fetch(ctx context.Context, src Source, opts FetchOptions) (*Archive, error) {
	f := &fetcher{opts: opts}
	switch {
	case src.Path != "" && src.Repo != "":
		return nil, errors.New("fetch chart: both path and repo are set: set only one")
	case src.Path != "":
		t, err := f.local(ctx, src.Path, nil)
		if err != nil {
			return nil, err
		}
		return pack(t)
	case src.Repo != "":
		if src.Chart == "" {
			return nil, fmt.Errorf("fetch chart from %s: chart name is empty", src.Repo)
		}
		data, err := f.remote(ctx, src)
		if err != nil {
			return nil, err
		}
		ch, err := load(data)
		if err != nil {
			return nil, fmt.Errorf("fetch chart %s from %s: %w", src.Chart, src.Repo, err)
		}
		t := &tree{ch: ch}
		if err := f.vendor(ctx, t, "", nil); err != nil {
			return nil, err
		}
		if len(t.added) > 0 {
			return pack(t)
		}
		return archiveOf(data)
	default:
		return nil, errors.New("fetch chart: neither path nor repo is set")
	}
}

type fetcher struct {
	opts   FetchOptions
	client *http.Client
}

// local loads the chart directory or archive at p and vendors its
// dependencies. stack holds the directories being loaded, to stop cycles.
func (f *fetcher) local(ctx context.Context, p string, stack []string) (*tree, error) {
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("fetch chart: path %q is not absolute", p)
	}
	p = filepath.Clean(p)
	if slices.Contains(stack, p) {
		return nil, fmt.Errorf("fetch chart %s: dependency cycle: %s", p, strings.Join(append(stack, p), " -> "))
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("fetch chart: %w", err)
	}
	var ch *chartv2.Chart
	base := p
	if fi.IsDir() {
		ch, err = loader.LoadDir(p)
	} else {
		base = filepath.Dir(p)
		ch, err = loader.LoadFile(p)
	}
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", p, err)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("load chart %s: %w", p, err)
	}
	t := &tree{ch: ch}
	if err := f.vendor(ctx, t, base, append(stack, p)); err != nil {
		return nil, err
	}
	return t, nil
}

// vendor adds the declared dependencies of t that are not in its charts/.
// base is the directory file:// paths are relative to ("" if none).
func (f *fetcher) vendor(ctx context.Context, t *tree, base string, stack []string) error {
	ch := t.ch
	for _, dep := range ch.Metadata.Dependencies {
		if dep == nil {
			continue
		}
		if slices.ContainsFunc(ch.Dependencies(), func(c *chartv2.Chart) bool { return c.Name() == dep.Name }) ||
			slices.ContainsFunc(t.added, func(a *tree) bool { return a.ch.Name() == dep.Name }) {
			continue
		}
		var sub *tree
		switch r := dep.Repository; {
		case strings.HasPrefix(r, "file://"):
			p := strings.TrimPrefix(r, "file://")
			if !filepath.IsAbs(p) {
				if base == "" {
					return fmt.Errorf("chart %s: dependency %s: relative %s cannot be resolved for a downloaded chart: vendor it into charts/", ch.Name(), dep.Name, r)
				}
				p = filepath.Join(base, p)
			}
			var err error
			sub, err = f.local(ctx, p, stack)
			if err != nil {
				return fmt.Errorf("chart %s: dependency %s: %w", ch.Name(), dep.Name, err)
			}
		case strings.HasPrefix(r, "https://"), strings.HasPrefix(r, "http://"), strings.HasPrefix(r, "oci://"):
			data, err := f.remote(ctx, Source{Repo: r, Chart: dep.Name, Version: dep.Version})
			if err != nil {
				return fmt.Errorf("chart %s: dependency %s: %w", ch.Name(), dep.Name, err)
			}
			c, err := load(data)
			if err != nil {
				return fmt.Errorf("chart %s: dependency %s from %s: %w", ch.Name(), dep.Name, r, err)
			}
			sub = &tree{ch: c}
			if err := f.vendor(ctx, sub, "", nil); err != nil {
				return err
			}
		default:
			return fmt.Errorf("chart %s: dependency %s with repository %q is not in charts/: run \"helm dependency build\" on the chart, or use a file://, https:// or oci:// repository", ch.Name(), dep.Name, r)
		}
		if sub.ch.Name() != dep.Name {
			return fmt.Errorf("chart %s: dependency %s: %s holds chart %q", ch.Name(), dep.Name, dep.Repository, sub.ch.Name())
		}
		if err := checkVersion(dep.Version, sub.ch.Metadata.Version); err != nil {
			return fmt.Errorf("chart %s: dependency %s: %w", ch.Name(), dep.Name, err)
		}
		t.added = append(t.added, sub)
	}
	return nil
}

func checkVersion(constraint, version string) error {
	if constraint == "" {
		return nil
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return fmt.Errorf("version constraint %q: %w", constraint, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return fmt.Errorf("chart version %q: %w", version, err)
	}
	if !c.Check(v) {
		return fmt.Errorf("version %s does not satisfy %q: fix the version in Chart.yaml dependencies", version, constraint)
	}
	return nil
}

// remote downloads a chart archive from an https or oci repository.
func (f *fetcher) remote(ctx context.Context, src Source) ([]byte, error) {
	u, err := url.Parse(src.Repo)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s: repository URL %q: %w", src.Chart, src.Repo, err)
	}
	switch u.Scheme {
	case "oci":
		return f.oci(ctx, src, u)
	case "https", "http":
		return f.https(ctx, src)
	default:
		return nil, fmt.Errorf("fetch chart %s: repository %q: want an https:// or oci:// URL", src.Chart, src.Repo)
	}
}

func (f *fetcher) httpClient() (*http.Client, error) {
	if f.client != nil {
		return f.client, nil
	}
	tc, err := tlsConfig(f.opts)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	f.client = &http.Client{Transport: tr}
	return f.client, nil
}

func tlsConfig(opts FetchOptions) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipTLSVerify} //nolint:gosec // user's explicit choice
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// get downloads u, failing on non-2xx answers.
func (f *fetcher) get(ctx context.Context, u string) ([]byte, error) {
	c, err := f.httpClient()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w%s", u, err, hint(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > maxDownload {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, maxDownload)
	}
	return data, nil
}

// hint explains network errors that mean "no connection", which is the
// normal state on the disconnected side.
func hint(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return " (the server certificate is not trusted: pass its CA with a CA file)"
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return " (the repository is not reachable from this machine: fetch charts on the connected side)"
	}
	return ""
}

func (f *fetcher) https(ctx context.Context, src Source) ([]byte, error) {
	base := strings.TrimSuffix(src.Repo, "/")
	indexURL := base + "/index.yaml"
	data, err := f.get(ctx, indexURL)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s: %w", src.Chart, err)
	}
	cv, err := pickFromIndex(data, src.Chart, src.Version)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s from %s: %w", src.Chart, src.Repo, err)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("fetch chart %s %s from %s: the index lists no download URL", src.Chart, cv.Version, src.Repo)
	}
	chartURL, err := repo.ResolveReferenceURL(base+"/", cv.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s %s: URL %q: %w", src.Chart, cv.Version, cv.URLs[0], err)
	}
	cached := f.cachePath(cv.Digest)
	if cached != "" {
		if b, err := os.ReadFile(cached); err == nil && sha256hex(b) == cv.Digest {
			return b, nil
		}
	}
	b, err := f.get(ctx, chartURL)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s %s: %w", src.Chart, cv.Version, err)
	}
	if cv.Digest != "" && sha256hex(b) != cv.Digest {
		return nil, fmt.Errorf("fetch chart %s %s: %s has digest sha256:%s, the index says %s: the repository is inconsistent", src.Chart, cv.Version, chartURL, sha256hex(b), cv.Digest)
	}
	if cached != "" {
		if err := writeCache(cached, b); err != nil {
			return nil, fmt.Errorf("cache chart %s: %w", src.Chart, err)
		}
	}
	return b, nil
}

func (f *fetcher) cachePath(digest string) string {
	if f.opts.CacheDir == "" || len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		return ""
	}
	return filepath.Join(f.opts.CacheDir, "sha256-"+digest+".tgz")
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pickFromIndex parses a repository index and picks the chart version.
func pickFromIndex(index []byte, chart, version string) (*repo.ChartVersion, error) {
	var idx repo.IndexFile
	if err := yaml.Unmarshal(index, &idx); err != nil {
		return nil, fmt.Errorf("parse index.yaml: %w", err)
	}
	return pick(idx.Entries[chart], version)
}

// pick selects a version: an exact match first, else the highest version
// satisfying the constraint (latest stable when version is empty).
func pick(vs repo.ChartVersions, version string) (*repo.ChartVersion, error) {
	if len(vs) == 0 {
		return nil, errors.New("the repository index does not list this chart")
	}
	for _, v := range vs {
		if v != nil && v.Metadata != nil && v.Version == version && version != "" {
			return v, nil
		}
	}
	c, err := constraint(version)
	if err != nil {
		return nil, err
	}
	var best *repo.ChartVersion
	var bestV *semver.Version
	for _, v := range vs {
		if v == nil || v.Metadata == nil || v.Removed {
			continue
		}
		sv, err := semver.NewVersion(v.Version)
		if err != nil || !c.Check(sv) {
			continue
		}
		if bestV == nil || sv.GreaterThan(bestV) {
			best, bestV = v, sv
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no version matches %q", version)
	}
	return best, nil
}

func constraint(version string) (*semver.Constraints, error) {
	if version == "" {
		version = "*"
	}
	c, err := semver.NewConstraint(version)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", version, err)
	}
	return c, nil
}

func (f *fetcher) oci(ctx context.Context, src Source, u *url.URL) ([]byte, error) {
	repoRef := strings.TrimSuffix(strings.TrimPrefix(src.Repo, "oci://"), "/") + "/" + src.Chart
	tc, err := tlsConfig(f.opts)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	hc := &http.Client{Transport: ctxTransport{ctx: ctx, next: tr}}
	copts := []registry.ClientOption{registry.ClientOptHTTPClient(hc)}
	if f.opts.PlainHTTP || (endpoint.Address{Host: u.Host}).PlainHTTP(f.opts.CAFile != "" || f.opts.InsecureSkipTLSVerify) {
		copts = append(copts, registry.ClientOptPlainHTTP())
	}
	if f.opts.RegistryConfig != "" {
		copts = append(copts, registry.ClientOptCredentialsFile(f.opts.RegistryConfig))
	}
	rc, err := registry.NewClient(copts...)
	if err != nil {
		return nil, fmt.Errorf("fetch chart %s: registry client: %w", repoRef, err)
	}
	tag := src.Version
	if _, err := semver.StrictNewVersion(tag); err != nil {
		// Not an exact version: a constraint, or empty for the latest.
		c, err := constraint(src.Version)
		if err != nil {
			return nil, fmt.Errorf("fetch chart oci://%s: %w", repoRef, err)
		}
		tags, err := rc.Tags(repoRef)
		if err != nil {
			return nil, fmt.Errorf("fetch chart: list tags of oci://%s: %w%s", repoRef, err, hint(err))
		}
		tag = ""
		for _, t := range tags { // highest first
			if v, err := semver.NewVersion(t); err == nil && c.Check(v) {
				tag = t
				break
			}
		}
		if tag == "" {
			return nil, fmt.Errorf("fetch chart oci://%s: no version matches %q", repoRef, src.Version)
		}
	}
	ref := repoRef + ":" + strings.ReplaceAll(tag, "+", "_")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := rc.Pull(ref, registry.PullOptWithChart(true))
	if err != nil {
		return nil, fmt.Errorf("fetch chart: pull oci://%s: %w%s", ref, err, hint(err))
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, fmt.Errorf("fetch chart: pull oci://%s: no chart layer", ref)
	}
	return res.Chart.Data, nil
}

// ctxTransport also cancels requests when ctx is done: Helm's registry
// client does not take a context, so cancellation reaches it through its
// HTTP client. The request's own context (which carries auth scopes) is
// kept.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	done := func() { stop(); cancel(nil) }
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		done()
		return nil, err
	}
	resp.Body = &closeHook{ReadCloser: resp.Body, done: done}
	return resp, nil
}

type closeHook struct {
	io.ReadCloser
	done func()
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.done()
	return err
}

// writeCache writes a cached chart atomically, creating its directory.
func writeCache(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o644)
}
