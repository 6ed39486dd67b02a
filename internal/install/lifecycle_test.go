package install_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

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

// TestLifecycleJobAndCommandSteps runs a Job step (kwok completes its pod)
// and a command step against the control plane, then a Job that cannot
// start (its service account does not exist): the step times out, the Job
// is kept and recorded, and uninstall removes it.
func TestLifecycleJobAndCommandSteps(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	reg := fixture.Registry(t)
	fixture.PushImage(t, reg+"/lc/job:1", fixture.ImageOptions{Layers: []int{1024}, Seed: 9})
	spec := func(version, sa string) string {
		return `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: lcjob, version: ` + version + `}
lifecycle:
  preInstall:
    - name: migrate
      job: {image: ` + reg + `/lc/job:1, args: [up]}
      timeout: 2m
  postInstall:
    - name: who
      run: {command: sh, args: [-c, 'echo "deployment $SKIFF_DEPLOYMENT in $SKIFF_NAMESPACE, revision $SKIFF_REVISION"']}
  preUpgrade:
    - name: stuck
      job: {image: ` + reg + `/lc/job:1, serviceAccount: ` + sa + `}
      timeout: 3s
`
	}
	build1 := func(version string) string {
		dir := t.TempDir()
		fixture.WriteFiles(t, dir, map[string]string{"skiff.yaml": spec(version, "missing")})
		out := filepath.Join(t.TempDir(), "lcjob.skiff")
		if _, err := build.Build(ctx, build.Options{Spec: dir, Output: out}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := "skiff-e2e-lifecycle-job"
	var output []string
	o := install.Options{Deployment: "lcjob", Namespace: ns, Cluster: install.Cluster{Kubeconfig: kubeconfig},
		Load: install.LoadOptions{Registry: fixture.Registry(t) + "/site"}, Timeout: time.Minute, AllowCommands: true,
		Progress: func(e install.Event) {
			if e.Step == "output" {
				output = append(output, e.Message)
			}
		}}
	// a run that died leaves the deployment behind: start afresh
	_ = install.Uninstall(ctx, ns, "lcjob", install.UninstallOptions{Cluster: o.Cluster, Force: true})
	res, err := install.Install(ctx, openArchive(t, build1("1.0.0"), nil), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if got, want := strings.Join(output, "\n"), "  who: deployment lcjob in "+ns+", revision 1"; got != want {
		t.Errorf("command output %q, want %q", got, want)
	}
	if s := res.Record.Steps; len(s) != 2 || s[0].Kind != "job" || s[0].Result != "succeeded" || s[1].Kind != "run" || s[1].Result != "succeeded" {
		t.Errorf("recorded steps %+v", s)
	}
	jobs, err := kc.List(ctx, schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Errorf("%d Jobs left after the step succeeded", len(jobs))
	}

	_, err = install.Upgrade(ctx, openArchive(t, build1("1.1.0"), nil), o)
	if err == nil || !strings.Contains(err.Error(), `lifecycle step "stuck": Job `+ns+`/lcjob-stuck-`) || !strings.Contains(err.Error(), "did not complete within its timeout of 3s") {
		t.Fatalf("upgrade: %v", err)
	}
	jobs, err = kc.List(ctx, schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].GetLabels()[install.LabelDeployment] != "lcjob" {
		t.Fatalf("after the failed step: Jobs %v, want the kept one", jobs)
	}
	if err := install.Uninstall(ctx, ns, "lcjob", install.UninstallOptions{Cluster: o.Cluster}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if _, err := kc.Get(ctx, kube.RefOf(&jobs[0])); !errors.Is(err, kube.ErrNotFound) {
		t.Errorf("the kept Job after uninstall: %v", err)
	}
}
