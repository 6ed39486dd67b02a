package install

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// fakeCluster is a Kubernetes API in memory: objects by group, kind,
// namespace and name. Deleting without Wait leaves an object terminating
// (present, not ready) until something deletes it with Wait, which is how
// a real object with dependents behaves right after a foreground delete.
type fakeCluster struct {
	mu      sync.Mutex
	objects map[string]*unstructured.Unstructured
	// notReady makes Wait fail for these objects (key: ref.String()).
	notReady map[string]string
	// waits records the objects of every Wait call.
	waits [][]kube.ObjectRef
	// version is the Kubernetes version ServerVersion reports; "" means
	// unknown.
	version string
	// onJob, when set, is called with each Job applied (a copy): it plays
	// the Job controller, setting the stored Job's status with setStatus
	// and adding pods.
	onJob func(job *unstructured.Unstructured)
	// logs are pod logs by "namespace/pod".
	logs map[string]string
}

// setStatus sets the status of the stored object ref.
func (f *fakeCluster) setStatus(ref kube.ObjectRef, status map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.objects[fakeKey(ref)]; ok {
		o.Object["status"] = status
	}
}

func (f *fakeCluster) List(_ context.Context, gvk schema.GroupVersionKind, ns, selector string) ([]unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, v, _ := strings.Cut(selector, "=")
	var out []unstructured.Unstructured
	for _, o := range f.objects {
		if o.GetKind() != gvk.Kind || ns != "" && o.GetNamespace() != ns || k != "" && o.GetLabels()[k] != v {
			continue
		}
		out = append(out, *o.DeepCopy())
	}
	return out, nil
}

func (f *fakeCluster) PodLogs(_ context.Context, ns, pod, _ string, _ int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.logs[ns+"/"+pod]
	if !ok {
		return nil, fmt.Errorf("reading logs of pod %s/%s: %w", ns, pod, kube.ErrNotFound)
	}
	return []byte(l), nil
}

func (f *fakeCluster) ServerVersion(context.Context) (*version.Info, error) {
	return &version.Info{GitVersion: f.version}, nil
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{objects: map[string]*unstructured.Unstructured{}, notReady: map[string]string{}}
}

func fakeKey(r kube.ObjectRef) string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func (f *fakeCluster) ref(o *unstructured.Unstructured, defaultNS string) kube.ObjectRef {
	r := kube.RefOf(o)
	if !namespaced(r.Kind) {
		r.Namespace = ""
	} else if r.Namespace == "" {
		r.Namespace = defaultNS
	}
	return r
}

func (f *fakeCluster) Refs(objs []*unstructured.Unstructured, ns string) ([]kube.ObjectRef, error) {
	refs := make([]kube.ObjectRef, len(objs))
	for i, o := range objs {
		refs[i] = f.ref(o, ns)
	}
	return refs, nil
}

func (f *fakeCluster) Apply(ctx context.Context, objs []*unstructured.Unstructured, o kube.ApplyOptions) ([]kube.ObjectRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	// Namespaces and CRDs first, as kube.Client.Apply does.
	sorted := slices.Clone(objs)
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(sorted, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })
	var refs []kube.ObjectRef
	for _, obj := range sorted {
		ref := f.ref(obj, o.Namespace)
		if ref.Namespace != "" {
			if err := f.EnsureNamespace(ctx, ref.Namespace); err != nil {
				return refs, err
			}
		}
		if !o.DryRun {
			f.put(ref, obj, o.Labels)
			if obj.GetKind() == "Job" && f.onJob != nil {
				if c, err := f.Get(ctx, ref); err == nil {
					f.onJob(c)
				}
			}
		} else if o.OnResult != nil {
			// What apply would store: the object replaced, as put does.
			c := obj.DeepCopy()
			c.SetNamespace(ref.Namespace)
			l := c.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			maps.Copy(l, o.Labels)
			c.SetLabels(l)
			o.OnResult(ref, c)
		}
		refs = append(refs, ref)
		if o.OnApplied != nil {
			o.OnApplied(ref)
		}
	}
	return refs, nil
}

// put stores a copy of obj under ref, with labels added; a terminating
// object stays terminating (server-side apply does not revive it).
func (f *fakeCluster) put(ref kube.ObjectRef, obj *unstructured.Unstructured, labels map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := obj.DeepCopy()
	c.SetNamespace(ref.Namespace)
	l := c.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, labels)
	c.SetLabels(l)
	if old, ok := f.objects[fakeKey(ref)]; ok && old.GetDeletionTimestamp() != nil {
		c.SetDeletionTimestamp(old.GetDeletionTimestamp())
	}
	f.objects[fakeKey(ref)] = c
}

func (f *fakeCluster) Wait(ctx context.Context, refs []kube.ObjectRef, o kube.WaitOptions) error {
	f.mu.Lock()
	f.waits = append(f.waits, slices.Clone(refs))
	f.mu.Unlock()
	e := &kube.NotReadyError{Timeout: o.Timeout, Total: len(refs)}
	for _, r := range refs {
		s := f.Status(ctx, r)
		if o.OnStatus != nil {
			o.OnStatus(r, s.Status, s.Message)
		}
		if s.Status != "Current" {
			e.NotReady = append(e.NotReady, s)
		}
	}
	if len(e.NotReady) > 0 {
		return e
	}
	return nil
}

func (f *fakeCluster) Status(_ context.Context, r kube.ObjectRef) kube.ObjectStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[fakeKey(r)]
	switch {
	case !ok:
		return kube.ObjectStatus{Ref: r, Status: "NotFound", Message: "object does not exist"}
	case o.GetDeletionTimestamp() != nil:
		return kube.ObjectStatus{Ref: r, Status: "Terminating", Message: "being deleted"}
	case f.notReady[r.String()] != "":
		return kube.ObjectStatus{Ref: r, Status: "InProgress", Message: f.notReady[r.String()]}
	}
	return kube.ObjectStatus{Ref: r, Status: "Current", Message: "ready"}
}

func (f *fakeCluster) Explain(_ context.Context, sts []kube.ObjectStatus) {
	for i := range sts {
		if m := f.notReady[sts[i].Ref.String()]; m != "" {
			sts[i].Warnings = []string{"Pod x: FailedScheduling: " + m}
		}
	}
}

func (f *fakeCluster) Delete(ctx context.Context, refs []kube.ObjectRef, o kube.DeleteOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range slices.Backward(refs) {
		k := fakeKey(r)
		obj, ok := f.objects[k]
		if !ok {
			continue
		}
		if o.Wait {
			delete(f.objects, k)
		} else if obj.GetDeletionTimestamp() == nil {
			now := metav1.Now()
			obj.SetDeletionTimestamp(&now)
		}
		if o.OnDeleted != nil {
			o.OnDeleted(r)
		}
	}
	return nil
}

func (f *fakeCluster) Prune(ctx context.Context, old, keep []kube.ObjectRef, o kube.DeleteOptions) ([]kube.ObjectRef, error) {
	var doomed, skipped []kube.ObjectRef
	for _, r := range old {
		if slices.ContainsFunc(keep, func(k kube.ObjectRef) bool { return fakeKey(k) == fakeKey(r) }) {
			continue
		}
		if r.Kind == "Namespace" || r.Kind == "CustomResourceDefinition" {
			skipped = append(skipped, r)
			continue
		}
		doomed = append(doomed, r)
	}
	return skipped, f.Delete(ctx, doomed, o)
}

func (f *fakeCluster) Get(_ context.Context, r kube.ObjectRef) (*unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[fakeKey(r)]
	if !ok {
		return nil, fmt.Errorf("reading %s: %w", r, kube.ErrNotFound)
	}
	return o.DeepCopy(), nil
}

func (f *fakeCluster) EnsureNamespace(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fakeKey(kube.ObjectRef{Version: "v1", Kind: "Namespace", Name: name})
	if _, ok := f.objects[k]; !ok {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(name)
		f.objects[k] = ns
	}
	return nil
}

func (f *fakeCluster) NamespaceObjects(_ context.Context, ns string) ([]*unstructured.Unstructured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*unstructured.Unstructured
	for _, o := range f.objects {
		if o.GetNamespace() == ns && o.GetKind() != "Namespace" {
			out = append(out, o.DeepCopy())
		}
	}
	return out, nil
}

func (f *fakeCluster) ResolveRef(_ context.Context, s, ns string) (kube.ObjectRef, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		return kube.ObjectRef{}, fmt.Errorf("%q: want KIND/NAME", s)
	}
	switch strings.ToLower(kind) {
	case "deployment", "statefulset", "daemonset":
		return kube.ObjectRef{Group: "apps", Version: "v1", Kind: strings.ToUpper(kind[:1]) + kind[1:], Namespace: ns, Name: name}, nil
	}
	return kube.ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}, nil
}

func (f *fakeCluster) Lock(context.Context, string, string, string, time.Duration) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

// has reports whether an object of kind named ns/name exists (any group).
func (f *fakeCluster) has(kind, ns, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objects {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return true
		}
	}
	return false
}

// object returns the object of kind named ns/name, or nil.
func (f *fakeCluster) object(kind, ns, name string) *unstructured.Unstructured {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objects {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o.DeepCopy()
		}
	}
	return nil
}

// names lists "Kind ns/name" of every object but namespaces, sorted.
func (f *fakeCluster) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, o := range f.objects {
		if o.GetKind() != "Namespace" {
			out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
		}
	}
	slices.Sort(out)
	return out
}

// fakeHelm is Helm in memory: releases are revisions of rendered
// manifests, applied to (and deleted from) a fakeCluster the way Helm
// does: CRDs of crds/ only on install and never deleted, hooks created
// and left, resources with helm.sh/resource-policy: keep never deleted.
type fakeHelm struct {
	mu       sync.Mutex
	kube     *fakeCluster
	releases map[string][]*fakeRelease // by namespace/name, oldest first
	// fail, when set, is asked before each operation ("install",
	// "upgrade", "rollback", "uninstall") on a release; an error fails it
	// after its objects were applied, as a readiness timeout does.
	fail func(op, release string) error
}

type fakeRelease struct {
	revision int
	status   string
	values   map[string]any
	manifest string // templates, without hooks and crds/
	hooks    string
	crds     []string // names of the CRDs of crds/ and the templates
}

func newFakeHelm(kc *fakeCluster) *fakeHelm {
	return &fakeHelm{kube: kc, releases: map[string][]*fakeRelease{}}
}

func (h *fakeHelm) history(name, ns string) []*fakeRelease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.releases[ns+"/"+name]
}

func (h *fakeHelm) latest(name, ns string) *fakeRelease {
	hist := h.history(name, ns)
	if len(hist) == 0 {
		return nil
	}
	return hist[len(hist)-1]
}

func (h *fakeHelm) Get(_ context.Context, name, ns string) (*chart.Release, error) {
	r := h.latest(name, ns)
	if r == nil {
		return nil, fmt.Errorf("get release %s in %s: %w", name, ns, chart.ErrReleaseNotFound)
	}
	return &chart.Release{Name: name, Namespace: ns, Revision: r.revision, Status: r.status, Manifest: r.manifest, CRDs: r.crds}, nil
}

// Values implements releaser: what revision (0: the latest) was given.
func (h *fakeHelm) Values(_ context.Context, name, ns string, revision int) (map[string]any, error) {
	for _, r := range slices.Backward(h.history(name, ns)) {
		if revision == 0 || r.revision == revision {
			return r.values, nil
		}
	}
	return nil, fmt.Errorf("values of release %s in %s: %w", name, ns, chart.ErrReleaseNotFound)
}

// Test implements releaser: every test hook of the latest revision
// succeeds unless h.fail("test", release) fails it.
func (h *fakeHelm) Test(_ context.Context, name, ns string, _ chart.TestOptions) ([]chart.TestHook, error) {
	r := h.latest(name, ns)
	if r == nil {
		return nil, fmt.Errorf("test release %s in %s: %w", name, ns, chart.ErrReleaseNotFound)
	}
	objs, err := kube.ParseObjects([]byte(r.hooks))
	if err != nil {
		return nil, err
	}
	phase, ferr := "Succeeded", h.failure("test", name)
	if ferr != nil {
		phase = "Failed"
	}
	var out []chart.TestHook
	for _, ob := range objs {
		if strings.Contains(ob.GetAnnotations()["helm.sh/hook"], "test") {
			out = append(out, chart.TestHook{Name: ob.GetName(), Kind: ob.GetKind(), Phase: phase})
		}
	}
	if ferr != nil {
		return out, fmt.Errorf("test release %s in %s: %w", name, ns, ferr)
	}
	return out, nil
}

// render splits a chart's rendering into crds/, templates and hooks.
func (h *fakeHelm) render(ctx context.Context, data []byte, name, ns string, defaults, vals map[string]any, post func([]byte) ([]byte, error)) (crds, manifest, hooks string, err error) {
	r, err := chart.Render(ctx, data, chart.RenderOptions{ReleaseName: name, Namespace: ns, Defaults: defaults, Values: vals})
	if err != nil {
		return "", "", "", err
	}
	var c, m, hk []string
	for _, doc := range strings.Split(string(r.Manifest), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		switch {
		case strings.Contains(doc, "/crds/"):
			c = append(c, doc)
		case strings.Contains(doc, "helm.sh/hook"):
			hk = append(hk, doc)
		default:
			m = append(m, doc)
		}
	}
	manifest, hooks = strings.Join(m, "\n---\n"), strings.Join(hk, "\n---\n")
	if post != nil {
		pm, err := post([]byte(manifest))
		if err != nil {
			return "", "", "", err
		}
		ph, err := post([]byte(hooks))
		if err != nil {
			return "", "", "", err
		}
		manifest, hooks = string(pm), string(ph)
	}
	return strings.Join(c, "\n---\n"), manifest, hooks, nil
}

func (h *fakeHelm) apply(ctx context.Context, y, name, ns string) ([]kube.ObjectRef, error) {
	objs, err := kube.ParseObjects([]byte(y))
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		ref := h.kube.ref(o, ns)
		if cur := h.kube.object(ref.Kind, ref.Namespace, ref.Name); cur != nil {
			a := cur.GetAnnotations()
			if a["meta.helm.sh/release-name"] != name || a["meta.helm.sh/release-namespace"] != ns {
				return nil, fmt.Errorf("%s exists and cannot be imported into the current release: invalid ownership metadata", ref)
			}
		}
		an := o.GetAnnotations()
		if an == nil {
			an = map[string]string{}
		}
		an["meta.helm.sh/release-name"], an["meta.helm.sh/release-namespace"] = name, ns
		o.SetAnnotations(an)
	}
	return h.kube.Apply(ctx, objs, kube.ApplyOptions{Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}})
}

func (h *fakeHelm) deleteManifest(ctx context.Context, y, ns string, keep []kube.ObjectRef) error {
	objs, err := kube.ParseObjects([]byte(y))
	if err != nil {
		return err
	}
	var doomed []kube.ObjectRef
	for _, o := range objs {
		ref := h.kube.ref(o, ns)
		if o.GetAnnotations()["helm.sh/resource-policy"] == "keep" || slices.Contains(keep, ref) {
			continue
		}
		doomed = append(doomed, ref)
	}
	return h.kube.Delete(ctx, doomed, kube.DeleteOptions{Wait: true})
}

// crdNames names the CRDs of YAML streams.
func crdNames(ys ...string) []string {
	var names []string
	for _, y := range ys {
		objs, _ := kube.ParseObjects([]byte(y))
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				names = append(names, o.GetName())
			}
		}
	}
	return names
}

func (h *fakeHelm) record(name, ns string, r *fakeRelease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := ns + "/" + name
	if n := len(h.releases[k]); n > 0 {
		r.revision = h.releases[k][n-1].revision + 1
		for _, old := range h.releases[k] {
			if old.status == "deployed" {
				old.status = "superseded"
			}
		}
	} else {
		r.revision = 1
	}
	h.releases[k] = append(h.releases[k], r)
}

func (h *fakeHelm) failure(op, name string) error {
	if h.fail == nil {
		return nil
	}
	return h.fail(op, name)
}

func (h *fakeHelm) Install(ctx context.Context, data []byte, o chart.InstallOptions) (*chart.Release, error) {
	if h.latest(o.Release, o.Namespace) != nil {
		return nil, fmt.Errorf("install release %s in %s: cannot re-use a name that is still in use", o.Release, o.Namespace)
	}
	crds, manifest, hooks, err := h.render(ctx, data, o.Release, o.Namespace, o.Defaults, o.Values, o.PostRender)
	if err != nil {
		return nil, err
	}
	r := &fakeRelease{status: "pending-install", values: o.Values, manifest: manifest, hooks: hooks, crds: crdNames(crds, manifest)}
	h.record(o.Release, o.Namespace, r)
	// crds/: created when missing, never owned by the release
	crdObjs, err := kube.ParseObjects([]byte(crds))
	if err != nil {
		return nil, err
	}
	for _, c := range crdObjs {
		if !h.kube.has(c.GetKind(), "", c.GetName()) {
			if _, err := h.kube.Apply(ctx, []*unstructured.Unstructured{c}, kube.ApplyOptions{}); err != nil {
				return nil, err
			}
		}
	}
	for _, y := range []string{hooks, manifest} {
		if _, err := h.apply(ctx, y, o.Release, o.Namespace); err != nil {
			r.status = "failed"
			return nil, fmt.Errorf("install release %s in %s: %w", o.Release, o.Namespace, err)
		}
	}
	if err := h.failure("install", o.Release); err != nil {
		r.status = "failed"
		return nil, fmt.Errorf("install release %s in %s: %w", o.Release, o.Namespace, err)
	}
	r.status = "deployed"
	return h.Get(ctx, o.Release, o.Namespace)
}

func (h *fakeHelm) Upgrade(ctx context.Context, data []byte, o chart.UpgradeOptions) (*chart.Release, error) {
	hist := h.history(o.Release, o.Namespace)
	if len(hist) == 0 {
		return nil, fmt.Errorf("upgrade release %s in %s: %w", o.Release, o.Namespace, chart.ErrReleaseNotFound)
	}
	if !slices.ContainsFunc(hist, func(r *fakeRelease) bool { return r.status == "deployed" || r.status == "superseded" }) {
		return nil, fmt.Errorf("upgrade release %s in %s: no revision is deployed: roll back to a good revision or uninstall it", o.Release, o.Namespace)
	}
	vals := o.Values
	if o.ReuseValues {
		vals = chart.MergeMaps(hist[len(hist)-1].values, o.Values)
	}
	_, manifest, hooks, err := h.render(ctx, data, o.Release, o.Namespace, o.Defaults, vals, o.PostRender)
	if err != nil {
		return nil, err
	}
	return h.move(ctx, "upgrade", o.Release, o.Namespace, &fakeRelease{status: "pending-upgrade", values: vals, manifest: manifest, hooks: hooks})
}

// move applies r over the latest revision and deletes what it dropped.
func (h *fakeHelm) move(ctx context.Context, op, name, ns string, r *fakeRelease) (*chart.Release, error) {
	prev := h.latest(name, ns)
	h.record(name, ns, r)
	applied, err := h.apply(ctx, r.hooks, name, ns)
	if err == nil {
		var refs []kube.ObjectRef
		refs, err = h.apply(ctx, r.manifest, name, ns)
		applied = append(applied, refs...)
	}
	if err == nil {
		err = h.deleteManifest(ctx, prev.manifest, ns, applied)
	}
	if err == nil {
		err = h.failure(op, name)
	}
	if err != nil {
		r.status = "failed"
		return nil, fmt.Errorf("%s release %s in %s: %w", op, name, ns, err)
	}
	r.status = "deployed"
	return h.Get(ctx, name, ns)
}

func (h *fakeHelm) Rollback(ctx context.Context, name, ns string, revision int, _ chart.RollbackOptions) error {
	var target *fakeRelease
	for _, r := range h.history(name, ns) {
		if r.revision == revision {
			target = r
		}
	}
	if target == nil {
		return fmt.Errorf("rollback release %s in %s: %w", name, ns, chart.ErrReleaseNotFound)
	}
	_, err := h.move(ctx, "rollback", name, ns, &fakeRelease{status: "pending-rollback", values: target.values, manifest: target.manifest, hooks: target.hooks, crds: target.crds})
	return err
}

func (h *fakeHelm) Uninstall(ctx context.Context, name, ns string, o chart.UninstallOptions) error {
	r := h.latest(name, ns)
	if r == nil {
		return fmt.Errorf("uninstall release %s in %s: %w", name, ns, chart.ErrReleaseNotFound)
	}
	if err := h.failure("uninstall", name); err != nil {
		return err
	}
	if err := h.deleteManifest(ctx, r.manifest, ns, nil); err != nil {
		return err
	}
	if !o.KeepHooks { // as chart.Client does, unlike Helm itself
		if err := h.deleteManifest(ctx, r.hooks, ns, nil); err != nil {
			return err
		}
	}
	h.mu.Lock()
	delete(h.releases, ns+"/"+name)
	h.mu.Unlock()
	return nil
}

// fakeSite is a cluster in memory: API, Helm and Skiff's records.
type fakeSite struct {
	kube    *fakeCluster
	helm    *fakeHelm
	records *release.Memory
}

func newFakeSite() *fakeSite {
	kc := newFakeCluster()
	return &fakeSite{kube: kc, helm: newFakeHelm(kc), records: release.NewMemory()}
}

func (f *fakeSite) cluster() Cluster {
	return Cluster{backend: &backend{kube: f.kube, charts: f.helm, records: f.records}}
}

func (f *fakeSite) store() *release.Store { return release.NewStore(f.records, release.StoreOptions{}) }

// options are install options for deployment in ns on the fake site;
// images are assumed loaded into registry.test.
func (f *fakeSite) options(deployment, ns string) Options {
	return Options{Deployment: deployment, Namespace: ns, Cluster: f.cluster(), SkipLoad: true,
		Load: LoadOptions{Registry: "registry.test/site"}, Timeout: time.Second}
}

// history lists the statuses of a deployment's revisions, oldest first.
func (f *fakeSite) history(t *testing.T, ns, deployment string) string {
	t.Helper()
	hist, err := f.store().History(context.Background(), ns, deployment)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, r := range hist {
		out = append(out, fmt.Sprintf("%d:%s", r.Revision, r.Status))
	}
	return strings.Join(out, " ")
}

// buildPackage builds an unsigned package, without images, from spec
// files (skiff.yaml and what it names) and opens it.
func buildPackage(t *testing.T, files map[string]string) *Package {
	t.Helper()
	dir := t.TempDir()
	fixture.WriteFiles(t, dir, files)
	out := filepath.Join(t.TempDir(), "p.skiff")
	if _, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out}); err != nil {
		t.Fatalf("build: %v", err)
	}
	p, err := Open(context.Background(), out, bundle.OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// kubeRef is the ref of a core (v1) or well-known object.
func kubeRef(kind, ns, name string) kube.ObjectRef {
	group := ""
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		group = "apps"
	case "ClusterRole", "Role", "RoleBinding", "ClusterRoleBinding":
		group = "rbac.authorization.k8s.io"
	case "CustomResourceDefinition":
		group = "apiextensions.k8s.io"
	}
	return kube.ObjectRef{Group: group, Version: "v1", Kind: kind, Namespace: ns, Name: name}
}

func parseOne(t *testing.T, y string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kube.ParseObjects([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
