package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// shopFiles is a package without images: a chart "web" (a ConfigMap, a
// ClusterRole, a CRD among its templates, one in crds/, and a hook
// ServiceAccount kept between runs) and a manifests set "extras" (a
// ConfigMap, a ClusterRole and a CRD; version 1.0.0 also has a ConfigMap
// "legacy"). version and the web chart's greeting tell revisions apart;
// dropExtras leaves the manifests out.
func shopFiles(version, greeting string, dropExtras bool) map[string]string {
	crd := func(plural, group string) string {
		return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.%[2]s}
spec:
  group: %[2]s
  scope: Namespaced
  names: {plural: %[1]s, singular: x%[1]s, kind: X%[1]s}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`, plural, group)
	}
	spec := `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: shop, version: ` + version + `}
charts:
  - {name: web, path: charts/web}
`
	if !dropExtras {
		spec += "manifests:\n  - {name: extras, files: [extras.yaml]}\n"
	}
	legacy := ""
	if version == "1.0.0" {
		legacy = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy}\n"
	}
	return map[string]string{
		"skiff.yaml":                    spec,
		"charts/web/Chart.yaml":         "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values.yaml":        "greeting: " + greeting + "\n",
		"charts/web/crds/gadget.yaml":   crd("gadgets", "web.shop.test"),
		"charts/web/templates/crd.yaml": strings.Replace(crd("sprockets", "web.shop.test"), "{name: sprockets.web.shop.test}", `{name: "{{ replace "-" "" .Release.Name }}sprockets.web.shop.test"}`, 1),
		"charts/web/templates/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-config"}
data: {greeting: "{{ .Values.greeting }}"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "{{ .Release.Name }}-reader"}
rules: []
`,
		"charts/web/templates/hook.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: "{{ .Release.Name }}-init"
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
`,
		"extras.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: extras}
data: {version: "` + version + `"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shop-extras}
rules: []
---
` + crd("widgets", "extras.shop.test") + legacy,
	}
}

func TestLifecycleInMemory(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	v1 := buildPackage(t, shopFiles("1.0.0", "hello", false))
	v2 := buildPackage(t, shopFiles("1.1.0", "bonjour", false))

	res, err := Install(ctx, v1, f.options("shop", "shop"))
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if res.Record.Revision != 1 || res.Record.Status != release.StatusDeployed {
		t.Fatalf("install: %s %s", res.Record, res.Record.Status)
	}
	for _, want := range []string{"ConfigMap shop/shop-web-config", "ClusterRole /shop-web-reader", "ConfigMap shop/extras", "ClusterRole /shop-extras"} {
		kind, name, _ := strings.Cut(want, " ")
		ns, name, _ := strings.Cut(name, "/")
		if !f.kube.has(kind, ns, name) {
			t.Errorf("after install: no %s; have %v", want, f.kube.names())
		}
	}
	if _, err := Upgrade(ctx, v2, f.options("shop", "shop")); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if cm := f.kube.object("ConfigMap", "shop", "shop-web-config"); cm == nil || cm.Object["data"].(map[string]any)["greeting"] != "bonjour" {
		t.Errorf("after upgrade: %v", cm)
	}
	rb, err := Rollback(ctx, "shop", "shop", RollbackOptions{Cluster: f.cluster()})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Revision != 3 || rb.Package.Version != "1.0.0" {
		t.Errorf("rollback: %s %s", rb, rb.Package.Version)
	}
	if cm := f.kube.object("ConfigMap", "shop", "shop-web-config"); cm == nil || cm.Object["data"].(map[string]any)["greeting"] != "hello" {
		t.Errorf("after rollback: %v", cm)
	}
	if got, want := f.history(t, "shop", "shop"), "1:superseded 2:superseded 3:deployed"; got != want {
		t.Errorf("history %s, want %s", got, want)
	}
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster()}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if _, err := f.store().Latest(ctx, "shop", "shop"); !errors.Is(err, release.ErrNotFound) {
		t.Errorf("records after uninstall: %v", err)
	}
	for _, gone := range []string{"shop-web-config", "extras"} {
		if f.kube.has("ConfigMap", "shop", gone) {
			t.Errorf("ConfigMap %s left after uninstall", gone)
		}
	}
}

// TestRollbackAfterPrune: the upgrade prunes an object and awaits its
// deletion, so a rollback right after it applies the object anew instead
// of finding it terminating (which failed TestInstallNetworkPolicies).
func TestRollbackAfterPrune(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	if _, err := Upgrade(ctx, buildPackage(t, shopFiles("1.1.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	if f.kube.has("ConfigMap", "shop", "legacy") {
		t.Fatal("the upgrade left the pruned ConfigMap legacy (terminating)")
	}
	if _, err := Rollback(ctx, "shop", "shop", RollbackOptions{Cluster: f.cluster()}); err != nil {
		t.Fatalf("rollback right after the upgrade: %v", err)
	}
	if s := f.kube.Status(ctx, kubeRef("ConfigMap", "shop", "legacy")); s.Status != "Current" {
		t.Errorf("ConfigMap legacy after the rollback: %s", s.Status)
	}
}

// failHelm makes every Helm operation op on a release fail.
func failHelm(f *fakeSite, op string) {
	f.helm.fail = func(o, _ string) error {
		if o == op {
			return errors.New("context deadline exceeded")
		}
		return nil
	}
}

// TestRollbackAfterFailedUpgrade: without --atomic a failed upgrade
// leaves the cluster on the failed revision; a rollback without a revision
// returns to the last deployed one.
func TestRollbackAfterFailedUpgrade(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	failHelm(f, "upgrade")
	if _, err := Upgrade(ctx, buildPackage(t, shopFiles("1.1.0", "bonjour", false)), f.options("shop", "shop")); err == nil {
		t.Fatal("upgrade succeeded")
	}
	f.helm.fail = nil
	rb, err := Rollback(ctx, "shop", "shop", RollbackOptions{Cluster: f.cluster()})
	if err != nil {
		t.Fatalf("rollback after the failed upgrade: %v", err)
	}
	if rb.Revision != 3 || rb.Package.Version != "1.0.0" || rb.Description != "rollback to 1" {
		t.Errorf("rollback: %s %s %q", rb, rb.Package.Version, rb.Description)
	}
	if got, want := f.history(t, "shop", "shop"), "1:superseded 2:failed 3:deployed"; got != want {
		t.Errorf("history %s, want %s", got, want)
	}
	if cm := f.kube.object("ConfigMap", "shop", "shop-web-config"); cm == nil || cm.Object["data"].(map[string]any)["greeting"] != "hello" {
		t.Errorf("after rollback: %v", cm)
	}
}

// TestAtomicSaysWhatItDid: a failed --atomic operation names what it
// undid: the revision it rolled back to and the new revision.
func TestAtomicSaysWhatItDid(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	failHelm(f, "upgrade")
	o := f.options("shop", "shop")
	o.Atomic = true
	_, err := Upgrade(ctx, buildPackage(t, shopFiles("1.1.0", "bonjour", false)), o)
	if err == nil {
		t.Fatal("upgrade succeeded")
	}
	if want := "--atomic: rolled back to revision 1 (shop 1.0.0) as revision 3; the failed upgrade is revision 2"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to say %q", err, want)
	}
	if got, want := f.history(t, "shop", "shop"), "1:superseded 2:failed 3:deployed"; got != want {
		t.Errorf("history %s, want %s", got, want)
	}

	g := newFakeSite()
	failHelm(g, "install")
	o = g.options("shop", "shop")
	o.Atomic = true
	_, err = Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), o)
	if err == nil || !strings.Contains(err.Error(), "--atomic: removed what the failed install created") {
		t.Errorf("atomic install: %v", err)
	}
	for _, left := range g.kube.names() {
		if !strings.HasPrefix(left, "CustomResourceDefinition ") {
			t.Errorf("the failed --atomic install left %s", left)
		}
	}
}

// TestUninstallAfterFailedInstall: every component is recorded before it
// touches the cluster, so uninstall after a failed install removes the
// failed chart's release and objects, and a new install starts afresh.
func TestUninstallAfterFailedInstall(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	failHelm(f, "install")
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err == nil {
		t.Fatal("install succeeded")
	}
	if got, want := f.history(t, "shop", "shop"), "1:failed"; got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
	f.helm.fail = nil
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster()}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if r := f.helm.latest("shop-web", "shop"); r != nil {
		t.Errorf("Helm release shop-web left after uninstall (%s)", r.status)
	}
	for _, kind := range []string{"ConfigMap", "ClusterRole"} {
		for _, o := range f.kube.names() {
			if strings.HasPrefix(o, kind+" ") {
				t.Errorf("%s left after uninstall", o)
			}
		}
	}

	// A failed install resumed by a new install replaces the failed
	// release rather than upgrading it with its stale values.
	failHelm(f, "install")
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err == nil {
		t.Fatal("install succeeded")
	}
	f.helm.fail = nil
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "bonjour", false)), f.options("shop", "shop")); err != nil {
		t.Fatalf("install after a failed one: %v", err)
	}
	if hist := f.helm.history("shop-web", "shop"); len(hist) != 1 || hist[0].status != "deployed" {
		t.Errorf("Helm history of shop-web after the resumed install: %d revisions, want 1 deployed", len(hist))
	}
}

// TestOwnership: a second deployment in the same namespace neither adopts
// the first one's objects nor its Helm release, unless told to.
func TestOwnership(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	// shop3's manifests have the same object names as shop's.
	_, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop3", "shop"))
	if !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "ConfigMap shop/extras belongs to deployment shop in namespace shop") ||
		!strings.Contains(err.Error(), "--take-ownership") {
		t.Fatalf("second install: %v, want ErrOwned naming deployment shop", err)
	}
	if err := Uninstall(ctx, "shop", "shop3", UninstallOptions{Cluster: f.cluster()}); err != nil {
		t.Fatalf("uninstall shop3: %v", err)
	}
	if !f.kube.has("ConfigMap", "shop", "extras") || !f.kube.has("ConfigMap", "shop", "shop-web-config") {
		t.Fatalf("uninstalling the refused shop3 removed shop's objects: %v", f.kube.names())
	}

	// A Helm release that another deployment's records list is refused.
	s := &session{kc: f.kube, charts: f.helm, store: f.store(), o: f.options("other", "shop")}
	if err := s.checkRelease(ctx, "shop-web", "shop", nil); !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "belongs to deployment shop in namespace shop") {
		t.Errorf("release of another deployment: %v", err)
	}
	// One that no record lists was made by Helm or another tool.
	f.helm.record("stray", "shop", &fakeRelease{status: "deployed"})
	if err := s.checkRelease(ctx, "stray", "shop", nil); !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "was not installed by Skiff") {
		t.Errorf("stray release: %v", err)
	}
	s.o.TakeOwnership = true
	if err := s.checkRelease(ctx, "stray", "shop", nil); err != nil {
		t.Errorf("--take-ownership: %v", err)
	}

	// --take-ownership adopts: shop3 now owns the objects.
	o := f.options("shop3", "shop")
	o.TakeOwnership = true
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", true)), o); err != nil {
		t.Fatalf("install --take-ownership: %v", err)
	}
	if cm := f.kube.object("ConfigMap", "shop", "shop3-web-config"); cm == nil {
		t.Errorf("shop3's chart objects missing")
	}
}

// TestStatusMissing: status fails when recorded objects are gone.
func TestStatusMissing(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Status(ctx, f.cluster(), "shop", "shop"); err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, ref := range []kube.ObjectRef{kubeRef("ConfigMap", "shop", "extras"), kubeRef("ConfigMap", "shop", "shop-web-config")} {
		if err := f.kube.Delete(ctx, []kube.ObjectRef{ref}, kube.DeleteOptions{Wait: true}); err != nil {
			t.Fatal(err)
		}
	}
	rec, objs, err := Status(ctx, f.cluster(), "shop", "shop")
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "2 objects") || !strings.Contains(err.Error(), "ConfigMap shop/extras") {
		t.Fatalf("status with objects deleted: %v, want ErrMissing naming them", err)
	}
	if rec == nil || len(objs) == 0 {
		t.Errorf("status returned no record or objects with ErrMissing")
	}
}

func crdsOf(f *fakeSite) []string {
	var out []string
	for _, n := range f.kube.names() {
		if name, ok := strings.CutPrefix(n, "CustomResourceDefinition /"); ok {
			out = append(out, name)
		}
	}
	return out
}

// TestCRDsStay: CRDs of every source (manifests, chart templates, crds/)
// survive uninstall and an upgrade that drops them; --delete-crds removes
// them.
func TestCRDsStay(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	const all = "gadgets.web.shop.test shopwebsprockets.web.shop.test widgets.extras.shop.test"
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(crdsOf(f), " "); got != all {
		t.Fatalf("CRDs after install: %s, want %s", got, all)
	}
	if _, err := Upgrade(ctx, buildPackage(t, shopFiles("1.1.0", "hello", true)), f.options("shop", "shop")); err != nil {
		t.Fatal(err)
	}
	if f.kube.has("ConfigMap", "shop", "extras") {
		t.Error("the upgrade that dropped the extras component left its ConfigMap")
	}
	if got := strings.Join(crdsOf(f), " "); got != all {
		t.Errorf("CRDs after an upgrade without the extras component: %s, want %s", got, all)
	}
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster()}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(crdsOf(f), " "); got != all {
		t.Errorf("CRDs after uninstall: %s, want %s", got, all)
	}

	// --delete-crds deletes the CRDs of what the deployment runs.
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop")); err != nil {
		t.Fatalf("install over the CRDs left: %v", err)
	}
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster(), DeleteCRDs: true}); err != nil {
		t.Fatal(err)
	}
	if got := crdsOf(f); len(got) > 0 {
		t.Errorf("CRDs after uninstall --delete-crds: %v", got)
	}
}

// TestHooksAndNamespacesRemoved: uninstall removes the hook objects Helm
// leaves and the namespaces the install created, but never a namespace
// that holds objects Skiff did not create, nor one that existed before.
func TestHooksAndNamespacesRemoved(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	nsExists := func(ns string) bool { return f.kube.has("Namespace", "", ns) }
	if err := f.kube.EnsureNamespace(ctx, "existing"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"fresh", "mixed", "existing"} {
		if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", true)), f.options("shop-"+ns, ns)); err != nil {
			t.Fatalf("install into %s: %v", ns, err)
		}
		if !f.kube.has("ServiceAccount", ns, "shop-"+ns+"-web-init") {
			t.Fatalf("no hook ServiceAccount in %s: %v", ns, f.kube.names())
		}
	}
	// someone else's object in mixed
	cm := kubeRef("ConfigMap", "mixed", "not-skiffs")
	if _, err := f.kube.Apply(ctx, parseOne(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-skiffs, namespace: mixed}\n"), kube.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"fresh", "mixed", "existing"} {
		if err := Uninstall(ctx, ns, "shop-"+ns, UninstallOptions{Cluster: f.cluster()}); err != nil {
			t.Fatalf("uninstall from %s: %v", ns, err)
		}
		if f.kube.has("ServiceAccount", ns, "shop-"+ns+"-web-init") {
			t.Errorf("hook ServiceAccount left in %s", ns)
		}
	}
	if nsExists("fresh") {
		t.Error("namespace fresh, created by the install, is left")
	}
	if !nsExists("mixed") || f.kube.Status(ctx, cm).Status != "Current" {
		t.Error("namespace mixed, holding an object Skiff did not create, was removed")
	}
	if !nsExists("existing") {
		t.Error("namespace existing, there before the install, was removed")
	}
}

// TestWaitSaysWhatItWaitsFor: the progress names each object the wait is
// still waiting for.
func TestWaitSaysWhatItWaitsFor(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	f.kube.notReady[kubeRef("ConfigMap", "shop", "extras").String()] = "no data yet"
	o := f.options("shop", "shop")
	var msgs []string
	o.Progress = func(e Event) {
		if e.Step == "wait" {
			msgs = append(msgs, e.Message)
		}
	}
	if _, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), o); err == nil {
		t.Fatal("install with an object never ready succeeded")
	}
	if !slices.ContainsFunc(msgs, func(m string) bool {
		return strings.Contains(m, "waiting for ConfigMap shop/extras: InProgress no data yet")
	}) {
		t.Errorf("wait progress %q does not name the object waited for", msgs)
	}
}

// TestChartTimeoutNamesTheCause: a chart that fails (a Helm readiness
// timeout) is explained: which of its objects are not ready, and why.
func TestChartTimeoutNamesTheCause(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	f.kube.notReady[kubeRef("ConfigMap", "shop", "shop-web-config").String()] = "0/1 nodes are available: 1 Insufficient ephemeral-storage"
	failHelm(f, "install")
	_, err := Install(ctx, buildPackage(t, shopFiles("1.0.0", "hello", false)), f.options("shop", "shop"))
	if err == nil {
		t.Fatal("install succeeded")
	}
	for _, want := range []string{"objects of Helm release shop-web not ready", "ConfigMap shop/shop-web-config: InProgress", "warning: Pod x: FailedScheduling: 0/1 nodes are available: 1 Insufficient ephemeral-storage"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not say %q", err, want)
		}
	}
}
