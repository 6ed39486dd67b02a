package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	pathpkg "path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// Change is what an upgrade would do to one object.
type Change struct {
	// Op is "add", "remove" or "change" for an object; "downgrade" (with
	// no Component) when the package is older than the deployed one;
	// "run" or "job" for a lifecycle step that would run a command on
	// this machine or a Job (Component is the phase, Object the step).
	Op        string
	Component string
	Object    string
	// Diff is a unified line diff of the object's YAML for "change".
	Diff string
}

// Diff compares what p would deploy with what the cluster runs now: every
// object of p is server-side applied in a dry run and compared with the
// live object, so drift and objects deleted out of band show; objects the
// deployment has and p lacks show as removed. Nothing is changed. A
// deployment that does not exist yet shows every object as added. For an
// existing deployment o.Load.Registry defaults to the recorded one.
func Diff(ctx context.Context, p *Package, o Options) ([]Change, error) {
	o.defaults(p.Description)
	d := p.Description
	b, err := o.Cluster.connect(o.Namespace, &o)
	if err != nil {
		return nil, err
	}
	cur, err := b.store(0).Deployed(ctx, o.Namespace, o.Deployment)
	if err != nil && !errors.Is(err, release.ErrNotFound) {
		return nil, err
	}
	if o.Load.Registry == "" && cur != nil {
		o.Load.Registry, o.Load.Flatten = recordedRegistry(cur)
	}
	dest, err := ParseRegistry(o.Load.Registry, o.Load.Flatten)
	if err != nil {
		return nil, err
	}
	m, err := Relocation(d, dest)
	if err != nil {
		return nil, err
	}
	post := relocator(m)
	uv, err := splitValues(d, o.Values, o.Set)
	if err != nil {
		return nil, err
	}
	names, err := releaseNames(d, o.Deployment, o.Namespace, cur)
	if err != nil {
		return nil, err
	}
	// desired state, keyed by component then object
	want := map[string]*desired{}
	for _, c := range d.Charts {
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
		r, err := chart.Render(ctx, data, chart.RenderOptions{ReleaseName: names[c.Name], Namespace: ns, Values: vals, KubeVersion: renderKubeVersion(d, o)})
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		y, err := post(r.Manifest)
		if err != nil {
			return nil, err
		}
		labels, annotations := chart.ReleaseMetadata(names[c.Name], ns)
		w := &desired{ns: ns, manager: chart.FieldManager(), labels: labels, annotations: annotations}
		if w.objs, err = objectsOf(y, ns, true); err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		want[c.Name] = w
	}
	for _, ms := range d.Manifests {
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
		w := &desired{ns: ns, manager: FieldManager,
			labels: map[string]string{LabelManagedBy: "skiff", LabelDeployment: o.Deployment, LabelNamespace: o.Namespace}}
		if w.objs, err = objectsOf(y, ns, false); err != nil {
			return nil, fmt.Errorf("manifests %s: %w", ms.Name, err)
		}
		want[ms.Name] = w
	}

	// what the deployment has now, by its records and Helm releases
	have := map[string]map[string]*unstructured.Unstructured{}
	var pkg []Change
	if cur != nil {
		if err := checkDowngrade(cur.Package.Version, d.Version); err != nil {
			pkg = append(pkg, Change{Op: "downgrade", Object: fmt.Sprintf("package %s %s -> %s (upgrade refuses it without --allow-downgrade)", d.Name, cur.Package.Version, d.Version)})
		}
		for _, comp := range cur.Components {
			if comp.Deferred {
				continue
			}
			y := []byte(comp.Manifest)
			if comp.Kind == kindChart {
				r, err := b.charts.Get(ctx, comp.HelmRelease, comp.Namespace)
				if err != nil {
					return nil, fmt.Errorf("chart %s: %w", comp.Name, err)
				}
				y = []byte(r.Manifest)
			}
			if have[comp.Name], err = objectsOf(y, comp.Namespace, comp.Kind == kindChart); err != nil {
				return nil, err
			}
		}
	}
	changes, err := liveChanges(ctx, b.kube, have, want)
	if err != nil {
		return nil, err
	}
	return append(append(pkg, changes...), StepChanges(d, cur != nil)...), nil
}

// StepChanges lists the command and Job steps an install (upgrade false)
// or upgrade of d would run.
func StepChanges(d *bundle.Description, upgrade bool) []Change {
	ph := []string{"preInstall", "postInstall"}
	if upgrade {
		ph = []string{"preUpgrade", "postUpgrade"}
	}
	var out []Change
	for _, st := range LifecycleSteps(d, ph...) {
		switch st.Kind {
		case stepKindRun:
			out = append(out, Change{Op: st.Kind, Component: st.Phase, Object: fmt.Sprintf("step %q: %s (on this machine; needs --allow-commands)", st.Name, st.What)})
		case stepKindJob:
			out = append(out, Change{Op: st.Kind, Component: st.Phase, Object: fmt.Sprintf("step %q: %s", st.Name, st.What)})
		}
	}
	return out
}

// IsStep reports whether c is a lifecycle step that would run rather than
// a change to an object.
func (c Change) IsStep() bool { return c.Op == stepKindRun || c.Op == stepKindJob }

// desired are the objects one component would apply, and how.
type desired struct {
	ns          string
	manager     string
	labels      map[string]string
	annotations map[string]string
	objs        map[string]*unstructured.Unstructured
}

// recordedRegistry is the registry a deployment's images were loaded
// into: recorded, or (records of older versions) read off its image map.
func recordedRegistry(r *release.Record) (string, bool) {
	if r.Registry != "" {
		return r.Registry, r.Flatten
	}
	for src, tgt := range r.Images {
		repo, _, _ := strings.Cut(tgt, "@")
		srcRepo := sourceRepo(src)
		host, path, _ := strings.Cut(srcRepo, "/")
		for _, suffix := range []string{"/" + images.SourceHostPath(host) + "/" + path, "/" + path} {
			if reg, ok := strings.CutSuffix(repo, suffix); ok {
				return reg, false
			}
		}
		if reg, ok := strings.CutSuffix(repo, "/"+pathpkg.Base(path)); ok {
			return reg, true
		}
	}
	return "", false
}

// liveChanges server-side applies every desired object in a dry run and
// compares the result with the live object: "add" for a missing object
// (also one deleted out of band), "change" with a line diff when applying
// would change it (drift included), "remove" for a live object the
// deployment has and want lacks.
func liveChanges(ctx context.Context, kc cluster, have map[string]map[string]*unstructured.Unstructured, want map[string]*desired) ([]Change, error) {
	comps := map[string]bool{}
	for c := range have {
		comps[c] = true
	}
	for c := range want {
		comps[c] = true
	}
	var out []Change
	for _, c := range slices.Sorted(maps.Keys(comps)) {
		w := want[c]
		if w == nil {
			w = &desired{}
		}
		var objs []*unstructured.Unstructured
		for _, k := range slices.Sorted(maps.Keys(w.objs)) {
			ob := w.objs[k].DeepCopy()
			if len(w.annotations) > 0 {
				a := ob.GetAnnotations()
				if a == nil {
					a = map[string]string{}
				}
				maps.Copy(a, w.annotations)
				ob.SetAnnotations(a)
			}
			objs = append(objs, ob)
		}
		dry := map[string]*unstructured.Unstructured{}
		if len(objs) > 0 {
			_, err := kc.Apply(ctx, objs, kube.ApplyOptions{
				FieldManager: w.manager, Namespace: w.ns, Force: true, DryRun: true, Labels: w.labels,
				OnResult: func(_ kube.ObjectRef, res *unstructured.Unstructured) { dry[objectKey(res, w.ns)] = res },
			})
			if err != nil {
				return nil, fmt.Errorf("%s: server-side dry run: %w", c, err)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(w.objs)) {
			ref := kube.RefOf(w.objs[k])
			live, err := kc.Get(ctx, ref)
			switch {
			case errors.Is(err, kube.ErrNotFound):
				op := Change{Op: "add", Component: c, Object: k}
				if have[c][k] != nil {
					op.Object += " (missing from the cluster: deleted out of band)"
				}
				out = append(out, op)
				continue
			case err != nil:
				return nil, fmt.Errorf("%s: reading %s: %w", c, ref, err)
			}
			after := dry[k]
			if after == nil {
				continue // not checkable in a dry run (its CRD comes with it)
			}
			a, b := canonical(live), canonical(after)
			if a != b {
				out = append(out, Change{Op: "change", Component: c, Object: k, Diff: lineDiff(a, b)})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(have[c])) {
			if w.objs[k] != nil {
				continue
			}
			if _, err := kc.Get(ctx, kube.RefOf(have[c][k])); err == nil {
				out = append(out, Change{Op: "remove", Component: c, Object: k})
			} else if !errors.Is(err, kube.ErrNotFound) {
				return nil, fmt.Errorf("%s: reading %s: %w", c, k, err)
			}
		}
	}
	return out, nil
}

// canonical is the YAML of o without what the server alone changes.
func canonical(o *unstructured.Unstructured) string {
	o = o.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(o.Object, "status")
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// objectKey is the key of an object in a component (its ref without API
// version, namespaced kinds in ns when they name none).
func objectKey(ob *unstructured.Unstructured, ns string) string {
	ref := kube.RefOf(ob)
	if ref.Namespace == "" && namespaced(ref.Kind) {
		ref.Namespace = ns
	}
	ref.Version = ""
	return ref.String()
}

// objectsOf splits a YAML stream into objects by key. For charts it leaves
// out what Helm keeps outside the release manifest: hooks and CRDs.
func objectsOf(y []byte, ns string, isChart bool) (map[string]*unstructured.Unstructured, error) {
	objs, err := kube.ParseObjects(y)
	if err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for _, ob := range objs {
		if isChart && (ob.GetKind() == "CustomResourceDefinition" || ob.GetAnnotations()["helm.sh/hook"] != "") {
			continue
		}
		if ob.GetNamespace() == "" && namespaced(ob.GetKind()) {
			ob.SetNamespace(ns)
		}
		out[objectKey(ob, ns)] = ob
	}
	return out, nil
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
