package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/sign"
)

// remoteFlags configure registry access.
type remoteFlags struct {
	mirrors      []string
	insecure     []string
	plainHTTP    []string
	caFile       string
	dockerConfig string
	retries      int
}

func (f *remoteFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.mirrors, "registry-mirror", nil, "pull FROM through TO: FROM=TO[/prefix] (repeatable)")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "registry host to reach without TLS verification (repeatable)")
	fl.StringArrayVar(&f.plainHTTP, "plain-http", nil, "registry host to reach over plain HTTP (repeatable; a loopback registry is, unless written https://HOST or --ca-file is given)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA bundle to trust for registries (makes a loopback registry TLS too)")
	fl.StringVar(&f.dockerConfig, "docker-config", "", "Docker config file with registry credentials, or its directory (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	fl.IntVar(&f.retries, "retries", 3, "retries of a failed transfer")
}

func (f *remoteFlags) options() (oci.RemoteOptions, error) {
	o := oci.RemoteOptions{Insecure: f.insecure, CAFile: f.caFile, DockerConfig: f.dockerConfig, Retries: f.retries}
	if len(f.mirrors) > 0 {
		o.Mirrors = map[string]string{}
		for _, m := range f.mirrors {
			from, to, ok := strings.Cut(m, "=")
			if !ok || from == "" || to == "" {
				return o, fmt.Errorf("--registry-mirror %q: use FROM=TO, e.g. docker.io=127.0.0.1:5000/mirror", m)
			}
			a, err := endpoint.Parse(to)
			if err != nil {
				return o, fmt.Errorf("--registry-mirror %q: %w", m, err)
			}
			o.Mirrors[from] = strings.TrimSuffix(a.Host+"/"+a.Path, "/")
			o = o.WithAddress(a)
		}
	}
	for _, h := range f.plainHTTP {
		a, err := endpoint.Parse(h)
		if err != nil || a.Path != "" || a.Scheme == endpoint.HTTPS {
			return o, fmt.Errorf("--plain-http %q: give a registry HOST[:PORT]", h)
		}
		o = o.WithAddress(endpoint.Address{Scheme: endpoint.HTTP, Host: a.Host})
	}
	return o, nil
}

// fetchFlags configure chart repository access.
type fetchFlags struct {
	caFile   string
	insecure bool
}

func (f *fetchFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.caFile, "chart-ca-file", "", "PEM CA bundle to trust for chart repositories")
	cmd.Flags().BoolVar(&f.insecure, "chart-insecure", false, "skip TLS verification for chart repositories")
}

func (f *fetchFlags) chart() chart.FetchOptions {
	return chart.FetchOptions{CAFile: f.caFile, InsecureSkipTLSVerify: f.insecure}
}

// trustFlags configure signature verification.
type trustFlags struct {
	dir  string
	skip bool
}

func (f *trustFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dir, "trust-dir", "", "directory of trusted public keys (default $SKIFF_TRUST_DIR or ~/.config/skiff/trust)")
	cmd.Flags().BoolVar(&f.skip, "insecure-skip-signature", false, "accept an unsigned or untrusted package (logged)")
}

// options loads the trust directory, or waives signature verification
// when asked to (logged).
func (f *trustFlags) options(a *app) (bundle.OpenOptions, error) {
	if f.skip {
		a.warn("signature verification skipped (--insecure-skip-signature)")
		return bundle.OpenOptions{SkipSignature: true}, nil
	}
	dir := f.dir
	if dir == "" {
		var err error
		if dir, err = sign.DefaultTrustDir(); err != nil {
			return bundle.OpenOptions{}, err
		}
	}
	trust, err := sign.LoadTrust(dir)
	if err != nil {
		return bundle.OpenOptions{}, err
	}
	return bundle.OpenOptions{Trust: trust}, nil
}

// open opens the archive at path, verifying its signature unless
// verification is waived.
func (f *trustFlags) open(ctx context.Context, a *app, path string) (*install.Package, error) {
	o, err := f.options(a)
	if err != nil {
		return nil, err
	}
	return install.Open(ctx, path, o)
}
