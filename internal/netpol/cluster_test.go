package netpol_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/netpol"
	"github.com/skiffhq/skiff/internal/oci"
)

const upstream = "127.0.0.1:15999"

// buildPackage builds a manifests-only package (one Deployment in ns) with
// networkPolicy as given (YAML, indented for the top level; "" for none).
func buildPackage(t *testing.T, up, ns, version, networkPolicy string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"skiff.yaml": fmt.Sprintf(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata:
  name: npdemo
  version: %s
manifests:
  - name: app
    namespace: %s
    files: [manifests]
%s`, version, ns, networkPolicy),
		"manifests/app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: npdemo}
  template:
    metadata:
      labels: {app: npdemo}
    spec:
      containers:
        - name: app
          image: ` + upstream + `/np/app:1
`,
	}
	fixture.WriteFiles(t, dir, files)
	out := filepath.Join(t.TempDir(), "npdemo-"+version+".skiff")
	if _, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out,
		Remote: oci.RemoteOptions{Mirrors: map[string]string{upstream: up}}}); err != nil {
		t.Fatalf("build: %v", err)
	}
	return out
}

func TestInstallNetworkPolicies(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	up := fixture.Registry(t)
	fixture.PushImage(t, up+"/np/app:1", fixture.ImageOptions{Layers: []int{1024}, Seed: 42})
	ns := fmt.Sprintf("skiff-np-%d", time.Now().UnixNano()%1e6)
	v1 := buildPackage(t, up, ns, "1.0.0", `networkPolicy:
  enabled: true
  allow:
    - name: web
      direction: ingress
      podSelector: {app: npdemo}
      namespace: ingress-nginx
      ports: [8080]
    - name: api
      direction: egress
      cidr: 10.0.0.0/8
      ports: [443]
      protocol: TCP
`)
	v2 := buildPackage(t, up, ns, "2.0.0", "")

	cluster := install.Cluster{Kubeconfig: kubeconfig}
	opts := install.Options{Deployment: "npdemo", Namespace: ns, Cluster: cluster,
		Load: install.LoadOptions{Registry: fixture.Registry(t)}, Timeout: time.Minute}
	open := func(path string) *install.Package {
		p, err := install.Open(ctx, path, bundle.OpenOptions{SkipSignature: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	policies := func() []string {
		t.Helper()
		l, err := kc.List(ctx, schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, ns, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range l {
			names = append(names, o.GetName())
		}
		slices.Sort(names)
		return names
	}

	res, err := install.Install(ctx, open(v1), opts)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	t.Cleanup(func() {
		_ = install.Uninstall(context.Background(), ns, "npdemo", install.UninstallOptions{Cluster: cluster, NoWait: true})
	})
	want := []string{"skiff-npdemo-allow-api", "skiff-npdemo-allow-web", "skiff-npdemo-default-deny", "skiff-npdemo-dns", "skiff-npdemo-same-namespace"}
	if got := policies(); !slices.Equal(got, want) {
		t.Fatalf("policies after install %v, want %v", got, want)
	}
	comps := res.Record.Components
	if len(comps) != 2 || comps[1].Name != netpol.Component || len(comps[1].Objects) != len(want) {
		t.Errorf("record components %+v, want app then %s with %d objects", comps, netpol.Component, len(want))
	}

	// Rolling back to revision 1 later re-applies them from the record;
	// an upgrade to a version without policies prunes them.
	if _, err := install.Upgrade(ctx, open(v2), opts); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if got := policies(); len(got) != 0 {
		t.Errorf("policies after upgrading to a package without them: %v", got)
	}
	if _, err := install.Rollback(ctx, ns, "npdemo", install.RollbackOptions{Cluster: cluster, Revision: 1, Timeout: time.Minute}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := policies(); !slices.Equal(got, want) {
		t.Errorf("policies after rollback %v, want %v", got, want)
	}

	if err := install.Uninstall(ctx, ns, "npdemo", install.UninstallOptions{Cluster: cluster}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if got := policies(); len(got) != 0 {
		t.Errorf("policies after uninstall: %v", got)
	}
}
