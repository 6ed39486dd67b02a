package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// hubDepSource resolves dependencies from hubs given as HUB/OWNER: for each
// dependency it picks the highest approved version in range and pulls it
// into dir.
func hubDepSource(hf *hubFlags, hubs []string, dir string) build.DepSource {
	return func(ctx context.Context, name, rng string) ([]string, error) {
		c, err := semver.NewConstraint(rng)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, h := range hubs {
			addr, err := endpoint.Parse(h)
			owner := addr.Path
			if err != nil || owner == "" || strings.Contains(owner, "/") {
				return nil, fmt.Errorf("--deps-hub %q: use HUB/OWNER, e.g. hub.example:8443/platform or https://127.0.0.1:8443/platform", h)
			}
			host := addr.Host
			hubAddr := strings.TrimSuffix(addr.String(), "/"+owner)
			cl, err := hf.client(hubAddr)
			if err != nil {
				return nil, err
			}
			pkgs, err := cl.Search(ctx, searchOpts(name, owner))
			if err != nil {
				return nil, fmt.Errorf("searching %s for %s: %w", host, name, err)
			}
			var best *semver.Version
			for _, p := range pkgs {
				if p.Name != name || p.Owner != owner {
					continue
				}
				v, err := semver.NewVersion(p.Version)
				if err != nil || !c.Check(v) || (best != nil && !v.GreaterThan(best)) {
					continue
				}
				best = v
			}
			if best == nil {
				continue
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.skiff", strings.ReplaceAll(host, ":", "_"), name, best.Original()))
			if _, err := cl.Pull(ctx, owner, name, best.Original(), path, pullOpts()); err != nil {
				return nil, fmt.Errorf("pulling %s/%s/%s:%s: %w", host, owner, name, best.Original(), err)
			}
			out = append(out, path)
		}
		return out, nil
	}
}

// depsTempDir holds dependency archives pulled from hubs for one build.
func depsTempDir() (string, func(), error) {
	d, err := os.MkdirTemp("", "skiff-deps-*")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func searchOpts(name, owner string) hubclient.SearchOptions {
	return hubclient.SearchOptions{Query: name, Owner: owner}
}

func pullOpts() hubclient.PullOptions { return hubclient.PullOptions{} }
