package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

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
		"charts/web/templates/crd.yaml": crd("sprockets", "web.shop.test"),
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
