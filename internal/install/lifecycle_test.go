package install_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
)

func TestLifecycleSteps(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	reg := fixture.Registry(t)
	fixture.PushImage(t, reg+"/lc/app:1", fixture.ImageOptions{Layers: []int{1024}, Seed: 7})
	dir := t.TempDir()
	files := map[string]string{
		"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: lc, version: 1.0.0}
manifests:
  - {name: seed, files: [seed.yaml]}
  - {name: app, files: [app.yaml]}
  - {name: smoke, files: [smoke.yaml]}
  - {name: migrate, files: [migrate.yaml]}
  - {name: backup, files: [backup.yaml]}
lifecycle:
  preInstall:
    - {name: seed data, apply: seed}
  postInstall:
    - {name: app ready, wait: deployment/app, timeout: 1m}
    - {name: smoke test, apply: smoke}
  preUpgrade:
    - {name: migrate schema, apply: migrate}
  preDelete:
    - {name: take a backup, apply: backup}
`,
		"app.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: lc}}
  template:
    metadata: {labels: {app: lc}}
    spec:
      containers: [{name: c, image: ` + reg + `/lc/app:1}]
`,
	}
	for _, n := range []string{"seed", "smoke", "migrate", "backup"} {
		files[n+".yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + n + "}\ndata: {step: " + n + "}\n"
	}
	fixture.WriteFiles(t, dir, files)
	out := filepath.Join(t.TempDir(), "lc.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: dir, Output: out}); err != nil {
		t.Fatal(err)
	}
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := "skiff-e2e-lifecycle"
	exists := func(name string) bool {
		_, err := kc.Get(ctx, kube.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: name})
		if err != nil && !errors.Is(err, kube.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	var steps []string
	o := install.Options{Deployment: "lc", Namespace: ns, Cluster: install.Cluster{Kubeconfig: kubeconfig},
		Load: install.LoadOptions{Registry: fixture.Registry(t) + "/lc"}, Timeout: time.Minute,
		Progress: func(e install.Event) {
			if e.Step == "lifecycle" || e.Step == "manifests" || e.Step == "delete" {
				steps = append(steps, e.Step+":"+e.Component)
			}
		}}
	if _, err := install.Install(ctx, openArchive(t, out, nil), o); err != nil {
		t.Fatalf("install: %v", err)
	}
	if want := "lifecycle:seed manifests:seed manifests:app lifecycle: lifecycle:smoke manifests:smoke"; strings.Join(steps, " ") != want {
		t.Errorf("install steps %q, want %q", strings.Join(steps, " "), want)
	}
	for name, want := range map[string]bool{"seed": true, "smoke": true, "migrate": false, "backup": false} {
		if got := exists(name); got != want {
			t.Errorf("after install, ConfigMap %s exists = %v, want %v", name, got, want)
		}
	}

	steps = nil
	if _, err := install.Upgrade(ctx, openArchive(t, out, nil), o); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if !strings.HasPrefix(strings.Join(steps, " "), "lifecycle:migrate manifests:migrate") {
		t.Errorf("upgrade steps %v: want the migrate step first", steps)
	}
	for name, want := range map[string]bool{"seed": true, "smoke": true, "migrate": true, "backup": false} {
		if got := exists(name); got != want {
			t.Errorf("after upgrade, ConfigMap %s exists = %v, want %v", name, got, want)
		}
	}

	steps = nil
	if err := install.Uninstall(ctx, ns, "lc", install.UninstallOptions{Cluster: o.Cluster, Progress: o.Progress}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if len(steps) == 0 || steps[0] != "lifecycle:backup" {
		t.Errorf("uninstall steps %v: want the backup step first", steps)
	}
	for _, name := range []string{"seed", "smoke", "migrate", "backup"} {
		if exists(name) {
			t.Errorf("after uninstall, ConfigMap %s still exists", name)
		}
	}
}
