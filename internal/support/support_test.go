package support_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/release"
	"github.com/skiffhq/skiff/internal/support"
)

const (
	upstream = "127.0.0.1:15999"
	password = "hunter2-sup3r-s3cret"
	// setMarker is given with --set: it must reach no record, log,
	// bundle file or error.
	setMarker = "set-marker-Qx7Lw9"
)

func buildPackage(t *testing.T, up, ns string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"skiff.yaml": fmt.Sprintf(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata:
  name: supdemo
  version: 1.0.0
manifests:
  - name: app
    namespace: %[1]s
    files: [manifests]
charts:
  - {name: web, path: charts/web, namespace: %[1]s}
`, ns),
		"charts/web/Chart.yaml":          "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values.yaml":         "adminPassword: changeme\n",
		"charts/web/templates/conf.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-conf}\ndata: {mode: plain}\n",
		"manifests/app.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  url: postgres://app:` + password + `@db:5432/app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 2
  selector:
    matchLabels: {app: supdemo}
  template:
    metadata:
      labels: {app: supdemo}
    spec:
      containers:
        - name: app
          image: ` + upstream + `/sup/app:1
          env:
            - name: DB_PASSWORD
              value: ` + password + `
`,
	}
	fixture.WriteFiles(t, dir, files)
	out := filepath.Join(t.TempDir(), "supdemo.skiff")
	if _, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out,
		Remote: oci.RemoteOptions{Mirrors: map[string]string{upstream: up}}}); err != nil {
		t.Fatalf("build: %v", err)
	}
	return out
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(b)
	}
}

func TestCollect(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	up := fixture.Registry(t)
	fixture.PushImage(t, up+"/sup/app:1", fixture.ImageOptions{Layers: []int{512}, Seed: 9})
	ns := fmt.Sprintf("skiff-sup-%d", time.Now().UnixNano()%1e6)
	cluster := install.Cluster{Kubeconfig: kubeconfig}
	p, err := install.Open(ctx, buildPackage(t, up, ns), bundle.OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := install.Options{Deployment: "supdemo", Namespace: ns, Cluster: cluster,
		Load: install.LoadOptions{Registry: fixture.Registry(t)}, Timeout: time.Minute,
		Set: []string{"web.adminPassword=" + setMarker}, Logger: logger,
		Progress: func(e install.Event) { fmt.Fprintln(&logs, e.Step, e.Component, e.Message) }}
	if _, err := install.Install(ctx, p, o); err != nil {
		t.Fatalf("install: %v", err)
	}
	// A malformed or misrouted --set fails without quoting its value.
	for _, bad := range []string{"nochart.adminPassword=" + setMarker, "web.list[x]=" + setMarker} {
		o.Set = []string{bad}
		if _, err := install.Upgrade(ctx, p, o); err == nil || strings.Contains(err.Error(), setMarker) {
			t.Errorf("upgrade --set %s: error %v", bad, err)
		}
	}
	if strings.Contains(logs.String(), setMarker) {
		t.Errorf("Helm's or Skiff's logs hold the --set value:\n%s", logs.String())
	}
	hist, err := install.Records(cluster)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := hist.History(ctx, ns, "supdemo")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(recs); strings.Contains(string(b), setMarker) || !strings.Contains(string(b), "--set web.adminPassword") {
		t.Errorf("records hold the --set value or lack its key path: %s", b)
	}
	t.Cleanup(func() {
		_ = install.Uninstall(context.Background(), ns, "supdemo", install.UninstallOptions{Cluster: cluster, NoWait: true})
	})

	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	res, err := support.Collect(ctx, support.Options{Cluster: cluster, Namespace: ns, Deployment: "supdemo", Output: out, TailLines: 50})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	files := readBundle(t, out)
	for _, name := range []string{"summary.json", "records/revision-1.json", "status.json", "events/" + ns + ".json"} {
		if _, ok := files[name]; !ok {
			t.Errorf("bundle lacks %s; has %v", name, res.Files)
		}
	}
	var sum struct {
		Pods   []string `json:"pods"`
		Errors []string `json:"errors"`
		Files  []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(files["summary.json"]), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Pods) != 2 {
		t.Errorf("pods %v, want the deployment's 2", sum.Pods)
	}
	if len(sum.Files) != len(files) {
		t.Errorf("summary lists %d files, bundle has %d", len(sum.Files), len(files))
	}
	// kwok pods have no logs: each is an error, not a failure.
	for _, pod := range sum.Pods {
		_, logged := files["logs/"+pod+"/app.log"]
		noted := false
		for _, e := range sum.Errors {
			noted = noted || strings.Contains(e, pod)
		}
		if logged == noted {
			t.Errorf("pod %s: logged %v, error noted %v; want exactly one", pod, logged, noted)
		}
	}
	var rec release.Record
	if err := json.Unmarshal([]byte(files["records/revision-1.json"]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Deployment != "supdemo" || len(rec.Components) != 2 || !strings.Contains(rec.Components[0].Manifest+rec.Components[1].Manifest, "DB_PASSWORD") {
		t.Errorf("record in bundle: %+v", rec)
	}
	if !strings.Contains(files["status.json"], "Deployment.apps "+ns+"/app") {
		t.Errorf("status.json lacks the deployment:\n%s", files["status.json"])
	}
	for name, data := range files {
		if strings.Contains(data, password) {
			t.Errorf("%s holds the secret value", name)
		}
		if strings.Contains(data, setMarker) {
			t.Errorf("%s holds the --set value", name)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode: %v %v", fi, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".bundle*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCollectUnknownDeployment(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	_, err := support.Collect(context.Background(), support.Options{Cluster: install.Cluster{Kubeconfig: kubeconfig},
		Namespace: "skiff-sup-none", Deployment: "nothing", Output: out})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("got %v, want not found", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("bundle written for an unknown deployment")
	}
}

func TestRedact(t *testing.T) {
	r := &release.Record{Deployment: "d", Namespace: "n", Revision: 1,
		Values: map[string]any{"web": map[string]any{
			"replicas": 2, "adminPassword": "p1", "auth": map[string]any{"token": "t1"},
			"db":   map[string]any{"apiKey": "k1", "host": "db", "secretName": "db-creds"},
			"list": []any{map[string]any{"client_secret": "s1"}},
			"env":  []any{map[string]any{"name": "API_TOKEN", "value": "t2"}, map[string]any{"name": "MODE", "value": "prod"}},
		}},
		Components: []release.Component{{Name: "m", Manifest: `apiVersion: v1
kind: Secret
metadata: {name: s}
data: {password: aHVudGVy}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
data: {token: t3, color: blue}
`}}}
	r.SealedValues = []release.SealedValues{{Name: "secret.age", Data: []byte("ciphertext")}}
	red := support.Redact(r)
	if red.SealedValues != nil {
		t.Errorf("redacted record keeps the sealed values files: %+v", red.SealedValues)
	}
	b, _ := json.Marshal(red)
	s := string(b)
	for _, secret := range []string{"p1", "t1", "k1", "s1", "t2", "t3", "aHVudGVy"} {
		if strings.Contains(s, `"`+secret+`"`) || strings.Contains(s, ": "+secret) {
			t.Errorf("redacted record holds %q: %s", secret, s)
		}
	}
	for _, kept := range []string{`"replicas":2`, `"host":"db"`, `"secretName":"db-creds"`, `"prod"`, "color: blue", "password: REDACTED"} {
		if !strings.Contains(s, kept) {
			t.Errorf("redacted record lost %s: %s", kept, s)
		}
	}
	if r.Values["web"].(map[string]any)["adminPassword"] != "p1" {
		t.Error("Redact modified its input")
	}
}
