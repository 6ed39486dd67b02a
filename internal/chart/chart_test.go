package chart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	helmregistry "helm.sh/helm/v4/pkg/registry"

	"github.com/skiffhq/skiff/internal/images"
)

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testChart creates, in a fresh directory, the chart "demo" with a file://
// subchart "sub" (a sibling directory), a subchart "vend" already in
// charts/, a CRD, a custom resource, a pre-install hook and a test hook.
// It returns the directory of demo.
func testChart(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, filepath.Join(root, "demo"), map[string]string{
		"Chart.yaml": `apiVersion: v2
name: demo
version: 0.1.0
appVersion: "1.0"
# a comment that must survive packaging
dependencies:
  - name: sub
    version: ~0.2.0
    repository: file://../sub
  - name: vend
    version: 1.0.0
    repository: https://charts.invalid/never-used
`,
		"values.yaml": "image: nginx:1.27\nreplicas: 1\n",
		".helmignore": "*.bak\n",
		"ignored.bak": "must not be packaged",
		"templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
`,
		"templates/hook.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: example.com/migrate:2
`,
		"templates/hook-sa.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-init
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation
`,
		"templates/tests/test.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    "helm.sh/hook": test
spec:
  restartPolicy: Never
  containers:
    - name: test
      image: curlimages/curl:8.10.1
`,
		"templates/widget.yaml": `apiVersion: example.com/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
spec:
  agent:
    image: {registry: quay.io, repository: example/agent, tag: "3.1"}
`,
		"crds/widget.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`,
		"charts/vend/Chart.yaml": "apiVersion: v2\nname: vend\nversion: 1.0.0\n",
		"charts/vend/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-vend
data: {k: v}
`,
	})
	writeFiles(t, filepath.Join(root, "sub"), map[string]string{
		"Chart.yaml":  "apiVersion: v2\nname: sub\nversion: 0.2.3\n",
		"values.yaml": "image: registry.k8s.io/pause:3.10\n",
		"templates/ds.yaml": `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Release.Name }}-sub
spec:
  selector: {matchLabels: {app: sub}}
  template:
    metadata: {labels: {app: sub}}
    spec:
      containers:
        - name: pause
          image: {{ .Values.image }}
`,
	})
	return filepath.Join(root, "demo")
}

// demoImages are the images of testChart rendered with default values.
var demoImages = []string{
	"docker.io/curlimages/curl:8.10.1",
	"docker.io/library/nginx:1.27",
	"example.com/migrate:2",
	"quay.io/example/agent:3.1",
	"registry.k8s.io/pause:3.10",
}

func TestFetchLocalDir(t *testing.T) {
	ctx := context.Background()
	dir := testChart(t)
	a, err := Fetch(ctx, Source{Path: dir}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "demo" || a.Version != "0.1.0" || a.AppVersion != "1.0" {
		t.Errorf("archive = %s %s %s, want demo 0.1.0 1.0", a.Name, a.Version, a.AppVersion)
	}
	ch, err := load(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	var deps []string
	for _, d := range ch.Dependencies() {
		deps = append(deps, d.Name()+"-"+d.Metadata.Version)
	}
	slices.Sort(deps)
	if want := []string{"sub-0.2.3", "vend-1.0.0"}; !slices.Equal(deps, want) {
		t.Errorf("dependencies = %v, want %v", deps, want)
	}
	for _, f := range ch.Raw {
		if f.Name == "ignored.bak" {
			t.Error(".helmignore was not honoured")
		}
		if f.Name == "Chart.yaml" && !bytes.Contains(f.Data, []byte("# a comment that must survive")) {
			t.Error("Chart.yaml was rewritten")
		}
	}

	// Determinism: another fetch after touching every file gives the
	// same bytes.
	later := time.Now().Add(time.Hour)
	filepath.Walk(filepath.Dir(dir), func(p string, _ os.FileInfo, _ error) error {
		return os.Chtimes(p, later, later)
	})
	b, err := Fetch(ctx, Source{Path: dir}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Data, b.Data) {
		t.Error("two fetches of the same chart differ")
	}

	// Repackaging the .tgz is a fixed point.
	tgz := filepath.Join(t.TempDir(), "demo-0.1.0.tgz")
	if err := os.WriteFile(tgz, a.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Fetch(ctx, Source{Path: tgz}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Data, c.Data) {
		t.Error("repackaging a fetched archive changed it")
	}
}

func TestFetchTgzFromHelmPackage(t *testing.T) {
	// Archives made by Helm's own packager carry real mtimes; repackaging
	// removes them, so the same chart saved at two times gives one result.
	ctx := context.Background()
	a, err := Fetch(ctx, Source{Path: testChart(t)}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for i, stamp := range []time.Time{time.Now(), time.Now().Add(-48 * time.Hour)} {
		ch, err := load(a.Data)
		if err != nil {
			t.Fatal(err)
		}
		ch.StampModTimes(stamp)
		p, err := saveWithHelm(ch, filepath.Join(t.TempDir(), fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Fetch(ctx, Source{Path: p}, FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if b.Name != "demo" || b.Version != "0.1.0" {
			t.Errorf("archive = %s %s", b.Name, b.Version)
		}
		got = append(got, b.Data)
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Error("repackaging the same chart saved at two times gives different archives")
	}
}

func TestFetchErrors(t *testing.T) {
	ctx := context.Background()
	dir := testChart(t)
	tests := []struct {
		name string
		src  Source
		edit map[string]string
		want string
	}{
		{name: "both", src: Source{Path: dir, Repo: "https://x"}, want: "both path and repo"},
		{name: "none", src: Source{}, want: "neither"},
		{name: "relative", src: Source{Path: "demo"}, want: "not absolute"},
		{name: "missing", src: Source{Path: filepath.Join(dir, "nope")}, want: "no such file"},
		{name: "bad constraint", src: Source{Path: dir}, edit: map[string]string{"../sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.3.0\n"}, want: `does not satisfy "~0.2.0"`},
		{name: "repo alias", src: Source{Path: dir}, edit: map[string]string{"Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies: [{name: x, version: 1.0.0, repository: '@stable'}]\n"}, want: "helm dependency build"},
		{name: "cycle", src: Source{Path: dir}, edit: map[string]string{"../sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.2.0\ndependencies: [{name: demo, repository: 'file://../demo'}]\n"}, want: "dependency cycle"},
		{name: "unreachable repo", src: Source{Repo: "https://127.0.0.1:1/charts", Chart: "demo"}, want: "https://127.0.0.1:1/charts/index.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if tt.edit != nil {
				src.Path = testChart(t) // a fresh copy to edit
				writeFiles(t, src.Path, tt.edit)
			}
			_, err := Fetch(ctx, src, FetchOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	ctx := context.Background()
	a, err := Fetch(ctx, Source{Path: testChart(t)}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Render(ctx, a.Data, RenderOptions{ReleaseName: "rel", Namespace: "apps", KubeVersion: "v1.35.0"})
	if err != nil {
		t.Fatal(err)
	}
	m := string(r.Manifest)
	for _, want := range []string{
		"kind: CustomResourceDefinition", // crds/
		"name: rel-web",                  // template
		"namespace: apps",
		"name: rel-migrate", // hook
		"name: rel-test",    // test hook
		"name: rel-sub",     // file:// subchart
		"name: rel-vend",    // vendored subchart
		"kind: Widget",      // custom resource
	} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q:\n%s", want, m)
		}
	}
	got, err := images.Discover(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, demoImages) {
		t.Errorf("images = %q, want %q", got, demoImages)
	}

	// Values reach the templates.
	r, err = Render(ctx, a.Data, RenderOptions{Values: map[string]any{"image": "nginx:1.28", "sub": map[string]any{"image": "pause:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = images.Discover(r.Manifest)
	if !slices.Contains(got, "docker.io/library/nginx:1.28") || !slices.Contains(got, "docker.io/library/pause:1") {
		t.Errorf("values not applied: %q", got)
	}

	if _, err := Render(ctx, []byte("not a chart"), RenderOptions{}); err == nil {
		t.Error("want error for a bad archive")
	}
}

func TestRenderPostRenderSeesHooks(t *testing.T) {
	ctx := context.Background()
	a, err := Fetch(ctx, Source{Path: testChart(t)}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := images.Map{}
	const dgst = "sha256:0123456789012345678901234567890123456789012345678901234567890123"
	for _, ref := range demoImages {
		target, err := images.Target(ref, images.Destination{Host: "127.0.0.1:5000"}, dgst)
		if err != nil {
			t.Fatal(err)
		}
		m[ref] = target
	}
	var calls atomic.Int32
	r, err := Render(ctx, a.Data, RenderOptions{PostRender: func(in []byte) ([]byte, error) {
		calls.Add(1)
		return images.Relocate(in, m, images.RelocateOptions{})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("post-renderer ran %d times, want 1", calls.Load())
	}
	got, err := images.Discover(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range got {
		if !strings.HasPrefix(ref, "127.0.0.1:5000/") {
			t.Errorf("image %s was not relocated (hooks and tests must pass the post-renderer)", ref)
		}
	}
	if strings.Contains(string(r.Manifest), "postrender-filename") {
		t.Error("post-render annotation leaked into the manifest")
	}
}

func TestMergeValues(t *testing.T) {
	files := [][]byte{
		[]byte("a: 1\nnested: {p: 1, q: 1}\nlist: [1, 2]\n"),
		[]byte("b: 2\nnested: {q: 2, r: 2}\nlist: [3]\n"),
	}
	inline := map[string]any{"c": 3, "nested": map[string]any{"r": 3}}
	got, err := MergeValues(files, inline, []string{"d=4", "nested.w=true", "b=20"}, []string{"e=5", "c=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": float64(1), "b": int64(20), "c": "true", "d": int64(4), "e": "5",
		"list":   []any{float64(3)},
		"nested": map[string]any{"p": float64(1), "q": float64(2), "r": 3, "w": true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeValues =\n%#v\nwant\n%#v", got, want)
	}
	if _, ok := inline["nested"].(map[string]any)["w"]; ok {
		t.Error("MergeValues modified the inline map")
	}
	if _, err := MergeValues([][]byte{[]byte("a: [")}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "values file 1") {
		t.Errorf("bad file error = %v", err)
	}
	if _, err := MergeValues(nil, nil, []string{"a[x]=1"}, nil); err == nil {
		t.Error("want error for a bad --set")
	}
}

// repoServer serves a Helm repository of archives over TLS on 127.0.0.1.
func repoServer(t *testing.T, archives ...*Archive) (srv *httptest.Server, caFile string, chartHits *atomic.Int32) {
	t.Helper()
	var idx strings.Builder
	idx.WriteString("apiVersion: v1\nentries:\n")
	byName := map[string][]*Archive{}
	for _, a := range archives {
		byName[a.Name] = append(byName[a.Name], a)
	}
	files := map[string][]byte{}
	for name, as := range byName {
		fmt.Fprintf(&idx, "  %s:\n", name)
		for _, a := range as {
			sum := sha256.Sum256(a.Data)
			file := fmt.Sprintf("%s-%s.tgz", a.Name, a.Version)
			files["/charts/"+file] = a.Data
			fmt.Fprintf(&idx, "    - apiVersion: v2\n      name: %s\n      version: %s\n      digest: %s\n      urls: [%s]\n",
				a.Name, a.Version, hex.EncodeToString(sum[:]), file)
		}
	}
	chartHits = &atomic.Int32{}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/charts/index.yaml" {
			w.Write([]byte(idx.String()))
			return
		}
		if b, ok := files[r.URL.Path]; ok {
			chartHits.Add(1)
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	srv.Config.ErrorLog = nilLogger() // no "TLS handshake error" noise
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, chartHits
}

// withVersion returns a copy of the demo archive relabelled as version v.
func withVersion(t *testing.T, dir, v string) *Archive {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "version: 0.1.0", "version: "+v, 1)
	writeFiles(t, dir, map[string]string{"Chart.yaml": s})
	a, err := Fetch(context.Background(), Source{Path: dir}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"Chart.yaml": string(b)})
	return a
}

func TestFetchHTTPSRepo(t *testing.T) {
	ctx := context.Background()
	dir := testChart(t)
	v1, v11, v2 := withVersion(t, dir, "1.0.0"), withVersion(t, dir, "1.1.0"), withVersion(t, dir, "2.0.0-rc.1")
	srv, caFile, hits := repoServer(t, v1, v11, v2)
	repoURL := srv.URL + "/charts"

	tests := []struct {
		version, want string
	}{
		{"1.0.0", "1.0.0"},
		{"^1.0.0", "1.1.0"},
		{"", "1.1.0"},
		{"2.0.0-rc.1", "2.0.0-rc.1"},
	}
	for _, tt := range tests {
		a, err := Fetch(ctx, Source{Repo: repoURL, Chart: "demo", Version: tt.version}, FetchOptions{CAFile: caFile})
		if err != nil {
			t.Fatalf("version %q: %v", tt.version, err)
		}
		if a.Version != tt.want {
			t.Errorf("version %q: got %s, want %s", tt.version, a.Version, tt.want)
		}
	}
	a, _ := Fetch(ctx, Source{Repo: repoURL, Chart: "demo", Version: "1.0.0"}, FetchOptions{CAFile: caFile})
	if a == nil || !bytes.Equal(a.Data, v1.Data) {
		t.Error("downloaded archive differs from the published one")
	}

	// Without the CA the server is not trusted; with the skip flag it is.
	_, err := Fetch(ctx, Source{Repo: repoURL, Chart: "demo"}, FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), repoURL+"/index.yaml") || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("untrusted server error = %v", err)
	}
	if _, err := Fetch(ctx, Source{Repo: repoURL, Chart: "demo"}, FetchOptions{InsecureSkipTLSVerify: true}); err != nil {
		t.Errorf("insecure fetch: %v", err)
	}

	// Unknown chart and version.
	if _, err := Fetch(ctx, Source{Repo: repoURL, Chart: "nope"}, FetchOptions{CAFile: caFile}); err == nil || !strings.Contains(err.Error(), "does not list") {
		t.Errorf("unknown chart error = %v", err)
	}
	if _, err := Fetch(ctx, Source{Repo: repoURL, Chart: "demo", Version: "9.9.9"}, FetchOptions{CAFile: caFile}); err == nil || !strings.Contains(err.Error(), "no version matches") {
		t.Errorf("unknown version error = %v", err)
	}

	// The cache serves the second download.
	cache := t.TempDir()
	opts := FetchOptions{CAFile: caFile, CacheDir: cache}
	before := hits.Load()
	for range 2 {
		if _, err := Fetch(ctx, Source{Repo: repoURL, Chart: "demo", Version: "1.0.0"}, opts); err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load() - before; n != 1 {
		t.Errorf("chart downloaded %d times with a cache, want 1", n)
	}
}

func TestFetchHTTPSDigestMismatch(t *testing.T) {
	dir := testChart(t)
	a := withVersion(t, dir, "1.0.0")
	bad := *a
	bad.Data = append([]byte(nil), a.Data...)
	srv, caFile, _ := repoServer(t, &bad)
	bad.Data[len(bad.Data)-1] ^= 0xff // the index keeps the digest of the original
	_, err := Fetch(context.Background(), Source{Repo: srv.URL + "/charts", Chart: "demo", Version: "1.0.0"}, FetchOptions{CAFile: caFile})
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("error = %v, want a digest mismatch", err)
	}
}

func TestFetchRemoteDependency(t *testing.T) {
	// A chart whose dependency is not vendored gets it from its https
	// repository, resolving the version constraint.
	ctx := context.Background()
	root := t.TempDir()
	writeFiles(t, filepath.Join(root, "lib"), map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: lib\nversion: 1.2.0\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lib}\n",
	})
	lib, err := Fetch(ctx, Source{Path: filepath.Join(root, "lib")}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv, caFile, _ := repoServer(t, lib)
	writeFiles(t, filepath.Join(root, "app"), map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: lib\n    version: ^1.0.0\n    repository: " + srv.URL + "/charts\n",
	})
	a, err := Fetch(ctx, Source{Path: filepath.Join(root, "app")}, FetchOptions{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := load(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Dependencies()) != 1 || ch.Dependencies()[0].Metadata.Version != "1.2.0" {
		t.Errorf("dependencies = %v", ch.Dependencies())
	}
}

func TestFetchOCI(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("HELM_REGISTRY_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := testChart(t)
	v1, v2 := withVersion(t, dir, "1.0.0"), withVersion(t, dir, "1.5.0+build.1")
	rc, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Archive{v1, v2} {
		ref := fmt.Sprintf("%s/charts/demo:%s", host, strings.ReplaceAll(a.Version, "+", "_"))
		if _, err := rc.Push(a.Data, ref, helmregistry.PushOptStrictMode(false)); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}

	tests := []struct {
		version string
		want    *Archive
	}{
		{"1.0.0", v1},
		{"1.5.0+build.1", v2},
		{"", v2},
		{"~1.0", v1},
	}
	for _, tt := range tests {
		a, err := Fetch(ctx, Source{Repo: "oci://" + host + "/charts", Chart: "demo", Version: tt.version}, FetchOptions{})
		if err != nil {
			t.Fatalf("version %q: %v", tt.version, err)
		}
		if a.Version != tt.want.Version || !bytes.Equal(a.Data, tt.want.Data) {
			t.Errorf("version %q: got %s, want %s (bytes equal: %v)", tt.version, a.Version, tt.want.Version, bytes.Equal(a.Data, tt.want.Data))
		}
	}
	_, err = Fetch(ctx, Source{Repo: "oci://" + host + "/charts", Chart: "missing", Version: "1.0.0"}, FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "oci://"+host+"/charts/missing:1.0.0") {
		t.Errorf("missing chart error = %v", err)
	}

	// A cancelled context stops the pull.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Fetch(cctx, Source{Repo: "oci://" + host + "/charts", Chart: "demo", Version: "1.0.0"}, FetchOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch error = %v", err)
	}
}

func saveWithHelm(ch *chartv2.Chart, dir string) (string, error) {
	return chartutil.Save(ch, dir)
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"values.yaml":              "image: {repository: quay.io/org/app, tag: v1}\ncache: {image: {registry: quay.io}}\n",
		"charts/cache/Chart.yaml":  "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
		"charts/cache/values.yaml": "image: {registry: docker.io, repository: library/redis, sha: ''}\nreplicas: 1\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Fetch(context.Background(), Source{Path: dir}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Defaults(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"image": map[string]any{"repository": "quay.io/org/app", "tag": "v1"},
		// the subchart's defaults under its name, the parent's winning
		"cache": map[string]any{"image": map[string]any{"registry": "quay.io", "repository": "library/redis", "sha": ""}, "replicas": float64(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults = %#v\nwant %#v", got, want)
	}
}

// TestFetchOCITLS: a chart registry on 127.0.0.1 serving TLS is reached
// over TLS when a CA file is given (a loopback one is plain HTTP only
// without it).
func TestFetchOCITLS(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("HELM_REGISTRY_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	ctx := context.Background()
	srv := httptest.NewTLSServer(registry.New(registry.Logger(nilLogger())))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	v1 := withVersion(t, testChart(t), "1.0.0")
	rc, err := helmregistry.NewClient(helmregistry.ClientOptHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Push(v1.Data, host+"/charts/demo:1.0.0", helmregistry.PushOptStrictMode(false)); err != nil {
		t.Fatalf("push: %v", err)
	}
	src := Source{Repo: "oci://" + host + "/charts", Chart: "demo", Version: "1.0.0"}
	a, err := Fetch(ctx, src, FetchOptions{CAFile: caFile})
	if err != nil {
		t.Fatalf("fetch with the CA file: %v", err)
	}
	if !bytes.Equal(a.Data, v1.Data) {
		t.Fatal("fetched chart differs from the pushed one")
	}
	if _, err := Fetch(ctx, src, FetchOptions{}); err == nil {
		t.Fatal("fetch without a CA file (plain HTTP to a TLS registry) succeeded")
	}
}
