package install_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/oci"
)

// siteChart names its images in values the three usual ways: a string,
// a {registry, repository, tag} mapping, and a subchart's
// {repository, tag} mapping; package values override one tag.
var siteChart = map[string]string{
	"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: site, version: 1.0.0}
charts:
  - name: web
    path: chart
    values:
      sidecar: {tag: "2"}
`,
	"chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.3.0+up1\ndescription: the web tier\n",
	"chart/values.yaml": `# comments are dropped
image: upstream.example/shop/web:1
sidecar:
  registry: upstream.example
  repository: shop/sidecar
  tag: "1"
`,
	"chart/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
        - name: sidecar
          image: "{{ .Values.sidecar.registry }}/{{ .Values.sidecar.repository }}:{{ .Values.sidecar.tag }}"
`,
	"chart/charts/db/Chart.yaml":  "apiVersion: v2\nname: db\nversion: 0.1.0\n",
	"chart/charts/db/values.yaml": "image: {repository: upstream.example/shop/db, tag: \"5\"}\n",
	"chart/charts/db/templates/sts.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: "{{ .Values.image.repository }}{{ with .Values.image.digest }}@{{ . }}{{ else }}:{{ .Values.image.tag }}{{ end }}"
`,
}

// TestLoadCharts: load pushes each chart as an OCI Helm chart whose
// defaults point at the loaded images; Helm pulls it from the site
// registry and renders only site images.
func TestLoadCharts(t *testing.T) {
	ctx := context.Background()
	up := fixture.Registry(t)
	for i, r := range []string{"shop/web:1", "shop/sidecar:2", "shop/db:5"} {
		fixture.PushImage(t, up+"/"+r, fixture.ImageOptions{Layers: []int{512}, Seed: int64(200 + i)})
	}
	dir := fixture.WriteFiles(t, "", siteChart)
	out := filepath.Join(t.TempDir(), "site.skiff")
	res, err := build.Build(ctx, build.Options{Spec: dir, Output: out, Remote: oci.RemoteOptions{Mirrors: map[string]string{"upstream.example": up}}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if n := len(res.Description.Images); n != 3 {
		t.Fatalf("build carried %d images, want 3: %v", n, res.Description.Images)
	}
	p := openArchive(t, out, nil)
	site := fixture.Registry(t)
	lres, err := install.Load(ctx, p, install.LoadOptions{Registry: site + "/mirror", Charts: true})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(lres.Charts) != 1 {
		t.Fatalf("charts pushed: %+v", lres.Charts)
	}
	c := lres.Charts[0]
	if want := "oci://" + site + "/mirror/charts/web:0.3.0_up1"; c.Ref != want || c.Version != "0.3.0+up1" || c.Images != 3 {
		t.Fatalf("chart pushed: %+v, want ref %s and 3 image values", c, want)
	}

	// Helm's registry client pulls it; rendered with no values at all,
	// every image is in the site registry.
	a, err := chart.Fetch(ctx, chart.Source{Repo: "oci://" + site + "/mirror/charts", Chart: "web", Version: "0.3.0+up1"}, chart.FetchOptions{})
	if err != nil {
		t.Fatalf("helm pull: %v", err)
	}
	r, err := chart.Render(ctx, a.Data, chart.RenderOptions{})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	found, err := images.Discover(r.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Fatalf("rendered images %v, want 3:\n%s", found, r.Manifest)
	}
	for _, im := range found {
		if !strings.HasPrefix(im, site+"/mirror/upstream.example/shop/") {
			t.Errorf("rendered image %s is not in the site registry", im)
		}
		// Each one is there.
		host, repo, ref, err := oci.SplitRef(im)
		if err != nil {
			t.Fatal(err)
		}
		reg, err := oci.NewRegistry(host, oci.RemoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Resolve(ctx, repo, ref); err != nil {
			t.Errorf("rendered image %s: %v", im, err)
		}
	}
	if !strings.Contains(string(r.Manifest), ":2") {
		t.Errorf("the package's value (sidecar tag 2) is not the default:\n%s", r.Manifest)
	}

	// A second load pushes no chart bytes.
	again, err := install.Load(ctx, p, install.LoadOptions{Registry: site + "/mirror", Charts: true})
	if err != nil || again.Push.BytesPushed != 0 {
		t.Fatalf("second load: %v, %+v", err, again.Push)
	}
}
