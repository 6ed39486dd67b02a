package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
)

// ErrKubeVersion: the cluster's Kubernetes version makes the charts select
// images the package does not carry.
var ErrKubeVersion = errors.New("kubernetes version mismatch")

// renderKubeVersion is the Kubernetes version offline renders (dry run,
// diff) use: o.KubeVersion, else the one the package was built for.
func renderKubeVersion(d *bundle.Description, o Options) string {
	if o.KubeVersion != "" {
		return o.KubeVersion
	}
	return d.KubeVersion
}

// checkKubeVersion compares the cluster's Kubernetes version with the one
// the package's charts were rendered for at build. Another minor version
// is reported; when rendering the charts for the cluster's version needs
// images the package lacks, the operation is refused before anything
// changes (Helm renders for the cluster at install, so it would fail half
// way on an image it cannot relocate).
func (s *session) checkKubeVersion(ctx context.Context, p *Package) error {
	d, o := p.Description, s.o
	if d.KubeVersion == "" || len(d.Charts) == 0 {
		return nil
	}
	info, err := s.kc.ServerVersion(ctx)
	if err != nil || info == nil || info.GitVersion == "" {
		return nil // unknown: Helm itself will ask again
	}
	built, err1 := chart.KubeMinor(d.KubeVersion)
	running, err2 := chart.KubeMinor(info.GitVersion)
	if err1 != nil || err2 != nil || built == running {
		return nil
	}
	missing, err := imagesFor(ctx, p, o, info.GitVersion)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the package's charts were rendered for Kubernetes %s at build, the cluster runs %s, and for %s they select images the package does not carry: %s: rebuild the package with kubeVersion: %q in skiff.yaml (or skiff build --kube-version %s)",
			ErrKubeVersion, built, running, running, strings.Join(missing, ", "), running, running)
	}
	o.emit(Event{Step: "kube-version", Message: fmt.Sprintf("note: the package was rendered for Kubernetes %s at build and the cluster runs %s; its charts select the same images for %s", built, running, running)})
	return nil
}

// imagesFor renders every chart of p for Kubernetes version kv with the
// operation's values and returns the images they name that p lacks.
func imagesFor(ctx context.Context, p *Package, o Options, kv string) ([]string, error) {
	d := p.Description
	known := map[string]bool{}
	for _, im := range d.Images {
		known[im.Ref] = true
	}
	uv, err := splitValues(d, o.Values, o.Set)
	if err != nil {
		return nil, err
	}
	names, err := releaseNames(d, o.Deployment, o.Namespace, nil)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range d.Charts {
		data, err := readLayer(ctx, p, c.Digest, c.Size, bundle.MediaTypeChart)
		if err != nil {
			return nil, err
		}
		vals, err := chartValues(c, uv[c.Name])
		if err != nil {
			return nil, err
		}
		ns := c.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		r, err := chart.Render(ctx, data, chart.RenderOptions{ReleaseName: names[c.Name], Namespace: ns, Values: vals, KubeVersion: kv})
		if err != nil {
			return nil, fmt.Errorf("chart %s: rendering for Kubernetes %s: %w", c.Name, kv, err)
		}
		found, err := images.Discover(r.Manifest)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		for _, im := range found {
			if !known[im] && !slices.Contains(missing, im) {
				missing = append(missing, im)
			}
		}
	}
	slices.Sort(missing)
	return missing, nil
}
