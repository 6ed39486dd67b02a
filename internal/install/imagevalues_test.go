package install_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
)

// flagChart passes two images only as container flags, the way
// cert-manager passes its ACME solver and prometheus-operator its config
// reloader: one as a {repository, tag, digest} mapping, one as a string.
var flagChart = map[string]string{
	"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: flags, version: 1.0.0}
charts:
  - name: cm
    path: chart
    imageValues:
      acmesolver.image: quay.io/jetstack/cert-manager-acmesolver:v1.21.1
      reloaderImage: quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1
`,
	"chart/Chart.yaml": "apiVersion: v2\nname: cm\nversion: 0.1.0\n",
	"chart/values.yaml": `acmesolver:
  image:
    repository: quay.io/jetstack/cert-manager-acmesolver
    tag: v1.21.1
    pullPolicy: IfNotPresent
reloaderImage: quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1
`,
	"chart/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: cm}
spec:
  selector: {matchLabels: {app: cm}}
  template:
    metadata: {labels: {app: cm}}
    spec:
      containers:
        - name: cm
          image: quay.io/jetstack/cert-manager-controller:v1.21.1
          args:
            - "--acme-http01-solver-image={{ .Values.acmesolver.image.repository }}{{ with .Values.acmesolver.image.digest }}@{{ . }}{{ else }}:{{ .Values.acmesolver.image.tag }}{{ end }}"
            - "--prometheus-config-reloader={{ .Values.reloaderImage }}"
            - "--pull-policy={{ .Values.acmesolver.image.pullPolicy }}"
`,
}

// TestImageValues: images that a chart passes only as flags reach the
// site registry by digest, in what install renders and in the cluster.
func TestImageValues(t *testing.T) {
	ctx := context.Background()
	up := fixture.Registry(t)
	for i, r := range []string{"jetstack/cert-manager-controller:v1.21.1", "jetstack/cert-manager-acmesolver:v1.21.1", "prometheus-operator/prometheus-config-reloader:v0.93.1"} {
		fixture.PushImage(t, up+"/"+r, fixture.ImageOptions{Layers: []int{1024}, Seed: int64(100 + i)})
	}
	dir := fixture.WriteFiles(t, "", flagChart)
	out := filepath.Join(t.TempDir(), "flags.skiff")
	res, err := build.Build(ctx, build.Options{Spec: dir, Output: out, Remote: oci.RemoteOptions{Mirrors: map[string]string{"quay.io": up}}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if n := len(res.Description.Images); n != 3 {
		t.Fatalf("build carried %d images, want 3 (the controller and the two mapped ones)", n)
	}
	p := openArchive(t, out, nil)
	airgap := fixture.Registry(t) + "/site"
	dest, err := install.ParseRegistry(airgap, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := install.Relocation(p.Description, dest)
	if err != nil {
		t.Fatal(err)
	}
	solver := m["quay.io/jetstack/cert-manager-acmesolver:v1.21.1"]
	reloader := m["quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"]
	pinned := regexp.MustCompile(`^` + regexp.QuoteMeta(airgap) + `/.+@sha256:[0-9a-f]{64}$`)
	for _, ref := range []string{solver, reloader} {
		if !pinned.MatchString(ref) {
			t.Fatalf("relocated reference %q is not in %s by digest", ref, airgap)
		}
	}
	wantArgs := []string{"--acme-http01-solver-image=" + solver, "--prometheus-config-reloader=" + reloader, "--pull-policy=IfNotPresent"}

	o := install.Options{
		Deployment: "flags", Namespace: "skiff-imagevalues",
		Load: install.LoadOptions{Registry: airgap}, Timeout: 2 * time.Minute,
	}
	var rendered strings.Builder
	dry := o
	dry.DryRun, dry.DryRunOut = true, &rendered
	if _, err := install.Install(ctx, p, dry); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, a := range wantArgs {
		if !strings.Contains(rendered.String(), a) {
			t.Errorf("rendered manifests lack %q:\n%s", a, rendered.String())
		}
	}

	// and the same in the cluster
	kubeconfig := fixture.Kubeconfig(t)
	o.Cluster = install.Cluster{Kubeconfig: kubeconfig}
	if _, err := install.Install(ctx, p, o); err != nil {
		t.Fatalf("install: %v", err)
	}
	t.Cleanup(func() {
		_ = install.Uninstall(context.Background(), o.Namespace, o.Deployment, install.UninstallOptions{Cluster: o.Cluster, NoWait: true})
	})
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	dep := get(t, kc, "Deployment", "apps", "v1", o.Namespace, "cm")
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	if strings.Join(args, " ") != strings.Join(wantArgs, " ") {
		t.Errorf("installed args\n%q\nwant\n%q", args, wantArgs)
	}
	t.Logf("installed flags: %q", args)
}
