package sbom_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
)

func purls(t *testing.T, b []byte) []string {
	t.Helper()
	bom, err := sbom.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range bom.Components {
		if c.PURL != "" {
			out = append(out, c.PURL)
		}
	}
	return out
}

func TestGenerate(t *testing.T) {
	host := fixture.Registry(t)
	layers := sbomtest.Image(t)
	md := sbomtest.PushLayers(t, host+"/cat/app:1", "linux/amd64", layers)
	repo, err := remote.NewRepository(host + "/cat/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	ctx := t.Context()
	ms, err := sbom.Manifests(ctx, repo, md)
	if err != nil || len(ms) != 1 || ms[0].Platform != "linux/amd64" {
		t.Fatalf("Manifests = %v, %v", ms, err)
	}
	o := sbom.Options{Ref: host + "/cat/app:1", TempDir: t.TempDir()}
	b, err := sbom.Generate(ctx, repo, ms[0].Descriptor, o)
	if err != nil {
		t.Fatal(err)
	}
	got := purls(t, b)
	want := []string{
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
		"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
		"pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
		"pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&upstream=busybox",
		"pkg:npm/left-pad@1.1.0",
		"pkg:npm/%40acme/util@2.0.0-beta.1",
		"pkg:pypi/flask-login@0.6.3",
		"pkg:golang/golang.org/x/sync@v0.25.0",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %s in\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, bad := range []string{"gone", "not-a-package", "removed", "pkg:pypi/old"} {
		for _, g := range got {
			if strings.Contains(g, bad) {
				t.Errorf("found %s, which is deleted or not a package", g)
			}
		}
	}
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "pkg:golang/stdlib@v1.") }) {
		t.Errorf("no Go standard library component in %v", got)
	}
	bom, _ := sbom.Parse(b)
	if bom.SpecVersion != "1.5" || bom.Metadata.Component.Name != o.Ref || bom.SerialNumber == "" {
		t.Errorf("metadata = %+v", bom.Metadata)
	}
	for _, c := range bom.Components {
		if c.PURL == "pkg:npm/left-pad@1.1.0" && c.Property(sbom.PropLocation) != "app/node_modules/left-pad/package.json" {
			t.Errorf("left-pad location = %q", c.Property(sbom.PropLocation))
		}
	}
	again, err := sbom.Generate(ctx, repo, ms[0].Descriptor, o)
	if err != nil || !bytes.Equal(again, b) {
		t.Errorf("second run differs (err %v)", err)
	}
}

func TestGenerateRandomLayersAndIndex(t *testing.T) {
	host := fixture.Registry(t)
	root := fixture.PushImage(t, host+"/rand:1", fixture.ImageOptions{Layers: []int{2000}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 7})
	repo, _ := remote.NewRepository(host + "/rand")
	repo.PlainHTTP = true
	ms, err := sbom.Manifests(t.Context(), repo, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Platform != "linux/amd64" || ms[1].Platform != "linux/arm64" {
		t.Fatalf("manifests = %+v", ms)
	}
	b, err := sbom.Generate(t.Context(), repo, ms[1].Descriptor, sbom.Options{Ref: "rand:1"})
	if err != nil {
		t.Fatal(err)
	}
	bom, _ := sbom.Parse(b)
	if len(bom.Components) != 0 {
		t.Errorf("components = %v", bom.Components)
	}
	var skipped, plat string
	for _, p := range bom.Metadata.Properties {
		switch p.Name {
		case sbom.PropSkippedLayer:
			skipped = p.Value
		case sbom.PropPlatform:
			plat = p.Value
		}
	}
	if skipped == "" || plat != "linux/arm64" {
		t.Errorf("properties = %v", bom.Metadata.Properties)
	}
	if _, err := sbom.Generate(t.Context(), repo, root, sbom.Options{Ref: "rand:1"}); err == nil || !strings.Contains(err.Error(), "sbom.Manifests") {
		t.Errorf("Generate(index) = %v", err)
	}
}

func TestPackage(t *testing.T) {
	d := &bundle.Description{Name: "demo", Version: "1.0.0",
		Charts: []bundle.Chart{{Name: "web", Chart: "nginx", Version: "15.1.0", Digest: digest.FromString("c")}},
		Files:  []bundle.File{{Target: "bin/tool", Digest: digest.FromString("f"), Size: 1}},
		Images: []bundle.Image{{Ref: "docker.io/library/nginx:1", Digest: digest.FromString("i")}},
	}
	b, err := sbom.Package(d, sbom.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(bom.Components) != 3 {
		t.Fatalf("components = %+v", bom.Components)
	}
	for _, c := range bom.Components {
		if len(c.Hashes) != 1 || c.Hashes[0].Alg != "SHA-256" {
			t.Errorf("%s hashes = %v", c.Name, c.Hashes)
		}
		if c.Name == "nginx" && c.Version != "15.1.0" {
			t.Errorf("chart version = %q", c.Version)
		}
	}
	b2, _ := sbom.Package(d, sbom.Options{})
	if !bytes.Equal(b, b2) {
		t.Error("package SBOM is not deterministic")
	}
}

func TestParsePURL(t *testing.T) {
	tests := []struct {
		in   string
		want sbom.PURL
	}{
		{"pkg:npm/%40acme/util@2.0.0", sbom.PURL{Type: "npm", Namespace: "@acme", Name: "util", Version: "2.0.0"}},
		{"pkg:deb/debian/libc6@1%3A2.36-9?arch=amd64&distro=debian-12", sbom.PURL{Type: "deb", Namespace: "debian", Name: "libc6", Version: "1:2.36-9",
			Qualifiers: map[string]string{"arch": "amd64", "distro": "debian-12"}}},
		{"pkg:golang/github.com/a/b/v2@v2.1.0", sbom.PURL{Type: "golang", Namespace: "github.com/a/b", Name: "v2", Version: "v2.1.0"}},
	}
	for _, tt := range tests {
		got, err := sbom.ParsePURL(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got.Type != tt.want.Type || got.Namespace != tt.want.Namespace || got.Name != tt.want.Name || got.Version != tt.want.Version ||
			len(got.Qualifiers) != len(tt.want.Qualifiers) {
			t.Errorf("%s = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("String() = %s, want %s", s, tt.in)
		}
	}
	for _, bad := range []string{"npm/x", "pkg:npm", "pkg:npm/"} {
		if _, err := sbom.ParsePURL(bad); err == nil {
			t.Errorf("ParsePURL(%q) succeeded", bad)
		}
	}
}
