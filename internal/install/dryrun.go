package install

import (
	"context"
	"fmt"
	"io"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
)

// dryRun renders every component with the user's values and relocated
// images, and writes the YAML to o.DryRunOut. Nothing is pushed or applied.
func dryRun(ctx context.Context, p *Package, o Options, upgrade bool) error {
	w := o.DryRunOut
	if w == nil {
		w = io.Discard
	}
	dest, err := ParseRegistry(o.Load.Registry, o.Load.Flatten)
	if err != nil {
		return err
	}
	m, err := Relocation(p.Description, dest)
	if err != nil {
		return err
	}
	post := relocator(m)
	uv, err := splitValues(p.Description, o.Values, o.Set)
	if err != nil {
		return err
	}
	names, err := releaseNames(p.Description, o.Deployment, o.Namespace, nil)
	if err != nil {
		return err
	}
	for _, c := range p.Description.Charts {
		data, err := readLayer(ctx, p, c.Digest, c.Size, bundle.MediaTypeChart)
		if err != nil {
			return err
		}
		vals, err := chartValues(c, uv[c.Name])
		if err != nil {
			return err
		}
		if err := setImageValues(c, data, vals, m); err != nil {
			return err
		}
		ns := c.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		r, err := chart.Render(ctx, data, chart.RenderOptions{ReleaseName: names[c.Name], Namespace: ns, Values: vals, KubeVersion: renderKubeVersion(p.Description, o)})
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
		y, err := post(r.Manifest)
		if err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
		fmt.Fprintf(w, "# chart %s (namespace %s)\n%s\n", c.Name, ns, y)
	}
	for _, ms := range p.Description.Manifests {
		z, err := readLayer(ctx, p, ms.Digest, ms.Size, bundle.MediaTypeManifests)
		if err != nil {
			return err
		}
		y, err := unzstd(z)
		if err != nil {
			return err
		}
		if y, err = post(y); err != nil {
			return fmt.Errorf("manifests %s: %w", ms.Name, err)
		}
		fmt.Fprintf(w, "# manifests %s\n%s\n", ms.Name, y)
	}
	if err := dryRunNetworkPolicies(w, p.Description, o); err != nil {
		return err
	}
	// the command and Job steps that would run, as comments
	for _, c := range StepChanges(p.Description, upgrade) {
		fmt.Fprintf(w, "# lifecycle: %s %s: %s\n", c.Op, c.Component, c.Object)
	}
	return nil
}
