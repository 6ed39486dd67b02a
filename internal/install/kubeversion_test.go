package install

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// kubeVersionFiles is a package whose chart runs a kubectl Job only on
// Kubernetes 1.35, with the kubectl image of that version (as
// kube-prometheus-stack's CRD upgrade Job picks kubectl by version).
func kubeVersionFiles(kubeVersion string) map[string]string {
	return map[string]string{
		"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: kv, version: 1.0.0}
kubeVersion: "` + kubeVersion + `"
charts:
  - {name: ops, path: charts/ops}
`,
		"charts/ops/Chart.yaml": "apiVersion: v2\nname: ops\nversion: 0.1.0\n",
		"charts/ops/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: ops}
data: {kube: "{{ .Capabilities.KubeVersion.Version }}"}
{{- if eq .Capabilities.KubeVersion.Minor "35" }}
---
apiVersion: batch/v1
kind: Job
metadata: {name: crd-upgrade}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: kubectl, image: "registry.k8s.io/kubectl:v1.35.4"}]
{{- end }}
`,
	}
}

func TestKubeVersion(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, kubeVersionFiles("1.36"))
	if got := p.Description.KubeVersion; got != "v1.36" {
		t.Fatalf("archive records kubeVersion %q, want v1.36", got)
	}

	// A cluster of the version the package was built for: installed.
	f := newFakeSite()
	f.kube.version = "v1.36.2"
	if _, err := Install(ctx, p, f.options("kv", "kv")); err != nil {
		t.Fatalf("install on 1.36: %v", err)
	}
	if cm := f.kube.object("ConfigMap", "kv", "ops"); cm == nil {
		t.Fatal("no ConfigMap ops")
	}

	// 1.35 selects an image the package lacks: refused up front, named.
	f = newFakeSite()
	f.kube.version = "v1.35.4"
	_, err := Install(ctx, p, f.options("kv", "kv"))
	if !errors.Is(err, ErrKubeVersion) || !strings.Contains(err.Error(), "registry.k8s.io/kubectl:v1.35.4") || !strings.Contains(err.Error(), `kubeVersion: "1.35"`) {
		t.Fatalf("install on 1.35: %v, want ErrKubeVersion naming the image and the fix", err)
	}
	if f.kube.has("ConfigMap", "kv", "ops") {
		t.Error("the refused install changed the cluster")
	}

	// Another minor that selects the same images: installed with a note.
	f = newFakeSite()
	f.kube.version = "v1.34.0"
	o := f.options("kv", "kv")
	var notes []string
	o.Progress = func(e Event) {
		if e.Step == "kube-version" {
			notes = append(notes, e.Message)
		}
	}
	if _, err := Install(ctx, p, o); err != nil {
		t.Fatalf("install on 1.34: %v", err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "rendered for Kubernetes 1.36") || !strings.Contains(notes[0], "cluster runs 1.34") {
		t.Errorf("notes %q", notes)
	}

	// --dry-run renders for the package's version, or --kube-version.
	var out strings.Builder
	o = f.options("kv2", "kv")
	o.DryRun, o.DryRunOut = true, &out
	if _, err := Install(ctx, p, o); err != nil || !strings.Contains(out.String(), `kube: "v1.36"`) {
		t.Errorf("dry run: %v\n%s", err, out.String())
	}
	out.Reset()
	o.KubeVersion = "1.34"
	if _, err := Install(ctx, p, o); err != nil || !strings.Contains(out.String(), `kube: "v1.34"`) {
		t.Errorf("dry run --kube-version 1.34: %v\n%s", err, out.String())
	}
}
