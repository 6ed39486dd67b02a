package install

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/kube"
)

// jobPackage builds a package whose lifecycle runs Jobs from the image
// reg/jobs/migrate:1 (pushed here), and no other image.
func jobPackage(t *testing.T, reg, lifecycle string) *Package {
	t.Helper()
	fixture.PushImage(t, reg+"/jobs/migrate:1", fixture.ImageOptions{Layers: []int{512}, Seed: 11})
	return buildPackage(t, map[string]string{"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: shop, version: 1.0.0}
lifecycle:
` + lifecycle})
}

func jobRef(ns, name string) kube.ObjectRef {
	return kube.ObjectRef{Group: "batch", Version: "v1", Kind: "Job", Namespace: ns, Name: name}
}

func TestJobSteps(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { jobPollInterval = d }(jobPollInterval)
	jobPollInterval = 10 * time.Millisecond
	reg := fixture.Registry(t)
	p := jobPackage(t, reg, `  preInstall:
    - name: Migrate the schema
      job:
        image: `+reg+`/jobs/migrate:1
        command: [migrate]
        args: [up, --all]
        env: {LEVEL: debug}
        retries: 1
      timeout: 90s
  preDelete:
    - name: drain
      job: {image: `+reg+`/jobs/migrate:1, namespace: ops}
`)
	f := newFakeSite()
	var applied []*unstructured.Unstructured
	f.kube.onJob = func(job *unstructured.Unstructured) {
		applied = append(applied, job)
		f.kube.setStatus(kube.RefOf(job), map[string]any{"conditions": []any{map[string]any{"type": "Complete", "status": "True"}}})
	}
	res, err := Install(ctx, p, f.options("shop", "shop"))
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if len(applied) != 1 {
		t.Fatalf("%d Jobs applied, want 1", len(applied))
	}
	job := applied[0]
	name := jobName("shop", "preInstall", "Migrate the schema")
	if job.GetName() != name || !strings.HasPrefix(name, "shop-migrate-the-schema-") || job.GetNamespace() != "shop" {
		t.Errorf("Job %s/%s, want shop/%s", job.GetNamespace(), job.GetName(), name)
	}
	if l := job.GetLabels(); l[LabelDeployment] != "shop" || l[LabelNamespace] != "shop" || l[LabelManagedBy] != "skiff" {
		t.Errorf("Job labels %v", l)
	}
	spec := job.Object["spec"].(map[string]any)
	if spec["backoffLimit"] != int64(1) || spec["activeDeadlineSeconds"] != int64(90) {
		t.Errorf("Job spec %v", spec)
	}
	c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	src := strings.TrimPrefix(reg, "") + "/jobs/migrate:1"
	if want := res.Record.Images[src]; want == "" || c["image"] != want || !strings.HasPrefix(want, "registry.test/site/") || !strings.Contains(want, "@sha256:") {
		t.Errorf("container image %v, want the relocated %q (map %v)", c["image"], want, res.Record.Images)
	}
	if got := c["command"].([]any); len(got) != 1 || got[0] != "migrate" {
		t.Errorf("command %v", got)
	}
	env := map[string]string{}
	for _, e := range c["env"].([]any) {
		m := e.(map[string]any)
		env[m["name"].(string)] = m["value"].(string)
	}
	for k, v := range map[string]string{"SKIFF_DEPLOYMENT": "shop", "SKIFF_OPERATION": "install", "SKIFF_PHASE": "preInstall", "SKIFF_REVISION": "1", "LEVEL": "debug"} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if f.kube.has("Job", "shop", name) {
		t.Error("the completed Job was not deleted")
	}
	if s := res.Record.Steps; len(s) != 1 || s[0].Kind != "job" || s[0].Result != "succeeded" || s[0].Job != "" || !strings.Contains(s[0].Command, "migrate up --all") {
		t.Errorf("recorded steps %+v", s)
	}

	// uninstall runs the preDelete Job in its namespace
	applied = nil
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster()}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if len(applied) != 1 || applied[0].GetNamespace() != "ops" {
		t.Errorf("uninstall applied %d Jobs: %v", len(applied), applied)
	}
}

// A failed Job fails the install with the tail of its pod's log; it is
// kept for inspection, and uninstall removes it.
func TestJobStepFails(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { jobPollInterval = d }(jobPollInterval)
	jobPollInterval = 10 * time.Millisecond
	reg := fixture.Registry(t)
	p := jobPackage(t, reg, `  postInstall:
    - name: migrate
      job: {image: `+reg+`/jobs/migrate:1}
`)
	f := newFakeSite()
	f.kube.logs = map[string]string{"shop/migrate-pod-2": "connecting\nmigration 7 failed: no such table\n"}
	f.kube.onJob = func(job *unstructured.Unstructured) {
		f.kube.setStatus(kube.RefOf(job), map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}}})
		for i, age := range []time.Duration{time.Hour, time.Minute} { // two pods; the newest is reported
			pod := &unstructured.Unstructured{}
			pod.SetAPIVersion("v1")
			pod.SetKind("Pod")
			pod.SetName("migrate-pod-" + string(rune('1'+i)))
			pod.SetLabels(map[string]string{"batch.kubernetes.io/job-name": job.GetName()})
			pod.SetCreationTimestamp(metav1.NewTime(time.Now().Add(-age)))
			f.kube.put(kube.ObjectRef{Version: "v1", Kind: "Pod", Namespace: "shop", Name: pod.GetName()}, pod, nil)
		}
	}
	_, err := Install(ctx, p, f.options("shop", "shop"))
	name := jobName("shop", "postInstall", "migrate")
	for _, want := range []string{
		`lifecycle step "migrate": Job shop/` + name + ` failed: BackoffLimitExceeded: Job has reached the specified backoff limit`,
		"last lines of pod migrate-pod-2:\n  connecting\n  migration 7 failed: no such table",
		"the Job is kept for inspection (kubectl describe job -n shop " + name + ")",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("install error %v\nlacks %q", err, want)
		}
	}
	if !f.kube.has("Job", "shop", name) {
		t.Fatal("the failed Job was not kept")
	}
	rec, _ := f.store().Latest(ctx, "shop", "shop")
	if s := rec.Steps; len(s) != 1 || s[0].Result != "failed" || s[0].Job != "shop/"+name {
		t.Errorf("recorded steps %+v", s)
	}
	if got := f.history(t, "shop", "shop"); got != "1:failed" {
		t.Errorf("history %s", got)
	}

	// the next attempt replaces the kept Job (it completes this time)
	f.kube.onJob = func(job *unstructured.Unstructured) {
		f.kube.setStatus(kube.RefOf(job), map[string]any{"conditions": []any{map[string]any{"type": "Complete", "status": "True"}}})
	}
	if _, err := Install(ctx, p, f.options("shop", "shop")); err != nil {
		t.Fatalf("second install: %v", err)
	}
	if f.kube.has("Job", "shop", name) {
		t.Error("the Job is left after the step succeeded")
	}

	// A Job of that name that the deployment did not make is refused.
	g := newFakeSite()
	other := &unstructured.Unstructured{}
	other.SetAPIVersion("batch/v1")
	other.SetKind("Job")
	other.SetName(name)
	g.kube.put(jobRef("shop", name), other, nil)
	_, err = Install(ctx, p, g.options("shop", "shop"))
	if !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "exists and was not created by Skiff") {
		t.Errorf("install over someone else's Job: %v", err)
	}

	// A Job that does not finish in time: the step times out, the Job is
	// kept and uninstall removes it.
	h := newFakeSite()
	q := jobPackage(t, reg, `  preInstall:
    - name: slow
      job: {image: `+reg+`/jobs/migrate:1}
      timeout: 1s
`)
	_, err = Install(ctx, q, h.options("shop", "shop"))
	slow := jobName("shop", "preInstall", "slow")
	if err == nil || !strings.Contains(err.Error(), "Job shop/"+slow+" did not complete within its timeout of 1s") {
		t.Fatalf("install: %v", err)
	}
	rec, _ = h.store().Latest(ctx, "shop", "shop")
	if s := rec.Steps; len(s) != 1 || s[0].Result != "timed out" {
		t.Errorf("recorded steps %+v", s)
	}
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: h.cluster()}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if h.kube.has("Job", "shop", slow) {
		t.Error("uninstall left the Job of the failed step")
	}
}

func TestJobName(t *testing.T) {
	for _, tc := range []struct{ deployment, phase, step string }{
		{"shop", "preInstall", "Migrate the schema!"},
		{"a-very-long-deployment-name-that-goes-on", "postUpgrade", "and a very long step name as well, longer than anything"},
		{"x", "preDelete", "---"},
	} {
		n := jobName(tc.deployment, tc.phase, tc.step)
		if len(n) > 63 || !dnsLabel(n) {
			t.Errorf("jobName(%q, %q, %q) = %q: not a DNS label of at most 63 characters", tc.deployment, tc.phase, tc.step, n)
		}
		if n == jobName(tc.deployment, "other", tc.step) {
			t.Errorf("jobName ignores the phase: %q", n)
		}
	}
}

func dnsLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// The log tail of a failed Job step reaches the error and the release
// record: the operation's secret values (--set, encrypted values files)
// are masked in it, as in a command step's output.
func TestJobStepLogMasksSecrets(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { jobPollInterval = d }(jobPollInterval)
	jobPollInterval = 10 * time.Millisecond
	reg := fixture.Registry(t)
	fixture.PushImage(t, reg+"/jobs/migrate:1", fixture.ImageOptions{Layers: []int{512}, Seed: 11})
	p := buildCommandPackage(t, commandFiles("1.0.0", `  postInstall:
    - name: migrate
      job: {image: `+reg+`/jobs/migrate:1}
`))
	const secret = "Job-Log-Secret-9d2e"
	f := newFakeSite()
	f.kube.logs = map[string]string{"shop/migrate-pod": "connecting as admin with password " + secret + "\nsealed " + secret + "-age\nauth failed\n"}
	f.kube.onJob = func(job *unstructured.Unstructured) {
		f.kube.setStatus(kube.RefOf(job), map[string]any{"conditions": []any{map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}}})
		pod := &unstructured.Unstructured{}
		pod.SetAPIVersion("v1")
		pod.SetKind("Pod")
		pod.SetName("migrate-pod")
		pod.SetLabels(map[string]string{"batch.kubernetes.io/job-name": job.GetName()})
		f.kube.put(kube.ObjectRef{Version: "v1", Kind: "Pod", Namespace: "shop", Name: "migrate-pod"}, pod, nil)
	}
	o := f.options("shop", "shop")
	o.Set = []string{"web.password=" + secret}
	o.Values = []ValuesFile{{Name: "secret.age", Data: []byte("web: {dbPassword: " + secret + "-age}\n"), Secret: true}}
	_, err := Install(ctx, p, o)
	if err == nil || !strings.Contains(err.Error(), "connecting as admin with password "+Redacted) || !strings.Contains(err.Error(), "auth failed") {
		t.Fatalf("install error %v\nlacks the masked log tail", err)
	}
	rec, _ := f.store().Latest(ctx, "shop", "shop")
	b, _ := json.Marshal(rec)
	for what, s := range map[string]string{"error": err.Error(), "record": string(b)} {
		if strings.Contains(s, secret) {
			t.Errorf("the %s holds the secret value:\n%s", what, s)
		}
	}
}
