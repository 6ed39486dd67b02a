package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// Change is what an upgrade would do to one object.
type Change struct {
	// Op is "add", "remove" or "change" for an object; "downgrade" (with
	// no Component) when the package is older than the deployed one.
	Op        string
	Component string
	Object    string
	// Diff is a unified line diff of the object's YAML for "change".
	Diff string
}

// Diff compares what p would deploy with what the deployment runs now.
// It reads the cluster (Helm release manifests and Skiff records) and
// renders p offline; nothing is changed. A deployment that does not exist
// yet shows every object as added.
func Diff(ctx context.Context, p *Package, o Options) ([]Change, error) {
	o.defaults(p.Description)
	dest, err := ParseRegistry(o.Load.Registry, o.Load.Flatten)
	if err != nil {
		return nil, err
	}
	m, err := Relocation(p.Description, dest)
	if err != nil {
		return nil, err
	}
	post := relocator(m)
	uv, err := splitValues(p.Description, o.Values, o.Set)
	if err != nil {
		return nil, err
	}
	// desired state, keyed by component then object
	want := map[string]map[string]string{}
	names, err := releaseNames(p.Description, o.Deployment, o.Namespace, nil)
	if err != nil {
		return nil, err
	}
	for _, c := range p.Description.Charts {
		data, err := readLayer(ctx, p, c.Digest, c.Size, bundle.MediaTypeChart)
		if err != nil {
			return nil, err
		}
		vals, err := chartValues(c, uv[c.Name])
		if err != nil {
			return nil, err
		}
		if err := setImageValues(c, data, vals, m); err != nil {
			return nil, err
		}
		ns := c.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		r, err := chart.Render(ctx, data, chart.RenderOptions{ReleaseName: names[c.Name], Namespace: ns, Values: vals, KubeVersion: renderKubeVersion(p.Description, o)})
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		y, err := post(r.Manifest)
		if err != nil {
			return nil, err
		}
		if want[c.Name], err = objectMap(y, ns, true); err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
	}
	for _, ms := range p.Description.Manifests {
		z, err := readLayer(ctx, p, ms.Digest, ms.Size, bundle.MediaTypeManifests)
		if err != nil {
			return nil, err
		}
		y, err := unzstd(z)
		if err != nil {
			return nil, err
		}
		if y, err = post(y); err != nil {
			return nil, err
		}
		ns := ms.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		if want[ms.Name], err = objectMap(y, ns, false); err != nil {
			return nil, fmt.Errorf("manifests %s: %w", ms.Name, err)
		}
	}

	// current state
	have := map[string]map[string]string{}
	b, err := o.Cluster.connect(o.Namespace, &o)
	if err != nil {
		return nil, err
	}
	cur, err := b.store(0).Deployed(ctx, o.Namespace, o.Deployment)
	if err != nil && !errors.Is(err, release.ErrNotFound) {
		return nil, err
	}
	var pkg []Change
	if cur != nil {
		if err := checkDowngrade(cur.Package.Version, p.Description.Version); err != nil {
			pkg = append(pkg, Change{Op: "downgrade", Object: fmt.Sprintf("package %s %s -> %s (upgrade refuses it without --allow-downgrade)", p.Description.Name, cur.Package.Version, p.Description.Version)})
		}
		cc := b.charts
		for _, comp := range cur.Components {
			y := []byte(comp.Manifest)
			if comp.Kind == kindChart {
				r, err := cc.Get(ctx, comp.HelmRelease, comp.Namespace)
				if err != nil {
					return nil, fmt.Errorf("chart %s: %w", comp.Name, err)
				}
				y = []byte(r.Manifest)
			}
			if have[comp.Name], err = objectMap(y, comp.Namespace, comp.Kind == kindChart); err != nil {
				return nil, err
			}
		}
	}
	return append(pkg, compare(have, want)...), nil
}

// objectMap splits a YAML stream into canonical YAML per object key. For
// charts it leaves out what Helm keeps outside the release manifest: hooks
// and CRDs.
func objectMap(y []byte, ns string, isChart bool) (map[string]string, error) {
	objs, err := kube.ParseObjects(y)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ob := range objs {
		ref := kube.RefOf(ob)
		if isChart && (ref.Kind == "CustomResourceDefinition" || ob.GetAnnotations()["helm.sh/hook"] != "") {
			continue
		}
		if ref.Namespace == "" && namespaced(ref.Kind) {
			ref.Namespace = ns
		}
		ref.Version = "" // a version bump alone is no change of object
		b, err := yaml.Marshal(ob.Object)
		if err != nil {
			return nil, err
		}
		out[ref.String()] = string(b)
	}
	return out, nil
}

func compare(have, want map[string]map[string]string) []Change {
	var out []Change
	comps := map[string]bool{}
	for c := range have {
		comps[c] = true
	}
	for c := range want {
		comps[c] = true
	}
	names := make([]string, 0, len(comps))
	for c := range comps {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		keys := map[string]bool{}
		for k := range have[c] {
			keys[k] = true
		}
		for k := range want[c] {
			keys[k] = true
		}
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			h, inHave := have[c][k]
			w, inWant := want[c][k]
			switch {
			case !inHave:
				out = append(out, Change{Op: "add", Component: c, Object: k})
			case !inWant:
				out = append(out, Change{Op: "remove", Component: c, Object: k})
			case h != w:
				out = append(out, Change{Op: "change", Component: c, Object: k, Diff: lineDiff(h, w)})
			}
		}
	}
	return out
}

// lineDiff is a minimal unified-style diff (LCS over lines) of a and b,
// showing changed lines with one line of context.
func lineDiff(a, b string) string {
	x := strings.Split(strings.TrimRight(a, "\n"), "\n")
	y := strings.Split(strings.TrimRight(b, "\n"), "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', y[j]})
			j++
		default:
			lines = append(lines, line{'-', x[i]})
			i++
		}
	}
	var buf bytes.Buffer
	for k, l := range lines {
		near := l.op != ' '
		if !near {
			for d := -1; d <= 1; d += 2 {
				if k+d >= 0 && k+d < len(lines) && lines[k+d].op != ' ' {
					near = true
				}
			}
		}
		if near {
			fmt.Fprintf(&buf, "%c %s\n", l.op, l.text)
		}
	}
	return buf.String()
}
