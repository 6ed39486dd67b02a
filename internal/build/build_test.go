package build_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/spec"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pkgDir writes a package with a chart, manifests and a file, all
// referencing images in reg.
func pkgDir(t *testing.T, reg string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "skiff.yaml"), `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: app, version: 1.0.0}
platforms: [linux/amd64, linux/arm64]
images: [`+reg+`/extra:1]
charts:
  - name: app
    path: chart
manifests:
  - name: extras
    files: [m.yaml]
files:
  - source: README.txt
    target: docs/README.txt
`)
	writeFile(t, filepath.Join(dir, "chart/Chart.yaml"), "apiVersion: v2\nname: app\nversion: 0.1.0\n")
	writeFile(t, filepath.Join(dir, "chart/values.yaml"), "image: "+reg+"/app:1\n")
	writeFile(t, filepath.Join(dir, "chart/templates/pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: {{ .Values.image }}\n")
	writeFile(t, filepath.Join(dir, "m.yaml"), "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: c\n            image: "+reg+"/job:1\n")
	writeFile(t, filepath.Join(dir, "README.txt"), "carried across\n")
	return dir
}

func seed(t *testing.T) string {
	t.Helper()
	reg := fixture.Registry(t)
	shared := [][]byte{bytes.Repeat([]byte("base"), 4096)}
	for i, r := range []string{"extra:1", "app:1", "job:1"} {
		fixture.PushImage(t, reg+"/"+r, fixture.ImageOptions{Layers: []int{3000}, Shared: shared, Platforms: []string{"linux/amd64", "linux/arm64", "linux/s390x"}, Seed: int64(i + 10)})
	}
	return reg
}

func TestBuild(t *testing.T) {
	reg := seed(t)
	dir := pkgDir(t, reg)
	out := filepath.Join(t.TempDir(), "a.skiff")
	res, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Description
	if len(d.Images) != 3 {
		t.Fatalf("images %v, want 3 (declared, chart, manifests)", d.Images)
	}
	for _, im := range d.Images {
		if len(im.Platforms) != 2 || im.SourceDigest == "" {
			t.Errorf("image %s: platforms %v source %q: want 2 platforms filtered from an index", im.Ref, im.Platforms, im.SourceDigest)
		}
	}
	if len(d.Files) != 1 || d.Files[0].Target != "docs/README.txt" {
		t.Errorf("files %v", d.Files)
	}
	if _, err := bundle.Verify(context.Background(), out, bundle.VerifyOptions{}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// the shared base layer is stored once
	a, err := bundle.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.Images()) != 3 {
		t.Errorf("archive index holds %d images", len(a.Images()))
	}

	// same inputs, same bytes
	out2 := filepath.Join(t.TempDir(), "b.skiff")
	if _, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out2}); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("two builds of the same inputs differ")
	}
}

func TestBuildErrorsLeaveNothing(t *testing.T) {
	reg := seed(t)
	tests := []struct {
		name string
		edit func(t *testing.T, dir string)
		opts build.Options
		want string
	}{
		{"missing image", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "m.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: "+reg+"/nope:1\n")
		}, build.Options{}, "nope"},
		{"malformed spec", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "skiff.yaml"), "apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: app, version: 1.0.0}\nimagez: []\n")
		}, build.Options{}, "imagez"},
		{"unreachable registry", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "m.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: c\n    image: 127.0.0.1:1/x:1\n")
		}, build.Options{Remote: oci.RemoteOptions{Retries: -1}}, "127.0.0.1:1"},
		{"bad set", nil, build.Options{Set: []string{"nochart.x=1"}}, "nochart"},
		{"no platform", nil, build.Options{Platforms: []string{"windows/amd64"}}, "windows/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := pkgDir(t, reg)
			if tt.edit != nil {
				tt.edit(t, dir)
			}
			outDir := t.TempDir()
			o := tt.opts
			o.Spec, o.Output = dir, filepath.Join(outDir, "x.skiff")
			_, err := build.Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
			left, _ := os.ReadDir(outDir)
			if len(left) != 0 {
				t.Errorf("a failed build left %v behind", left)
			}
		})
	}
}

func TestPlanMalformedSpecIsValidationError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "skiff.yaml"), "apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: Bad_Name, version: one}\n")
	_, err := build.NewPlan(context.Background(), build.PlanOptions{Spec: dir})
	if !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("got %v, want spec.ErrInvalid", err)
	}
}

func TestBuildResumesAfterInterruption(t *testing.T) {
	reg := seed(t)
	dir := pkgDir(t, reg)
	out := filepath.Join(t.TempDir(), "r.skiff")
	staging := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	written := 0
	_, err := build.Build(ctx, build.Options{Spec: dir, Output: out, StagingDir: staging, Concurrency: 1,
		Progress: func(e build.Event) {
			if e.Pull != nil && e.Pull.Kind == oci.BlobDone && strings.Contains(e.Pull.MediaType, "layer") {
				if written++; written == 2 {
					cancel() // interrupted after two blobs are in the archive
				}
			}
		}})
	if err == nil {
		t.Fatal("interrupted build succeeded")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("interrupted build left an archive")
	}
	// Damage one of the blobs the first run wrote into the partial
	// archive: the next run must notice (it re-checks blobs it did not
	// fetch itself) and fetch it again, and fetch none of the others.
	damaged, sound := damagePlacedBlobs(t, staging, out, 1)
	if len(sound) == 0 {
		t.Fatalf("the interrupted build left %d blobs in its partial archive, want at least 2", len(damaged)+len(sound))
	}
	fetched := map[string]bool{}
	res, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out, StagingDir: staging,
		Progress: func(e build.Event) {
			if e.Pull != nil && e.Pull.Kind == oci.BlobDone {
				fetched[e.Pull.Digest.String()] = true
			}
		}})
	if err != nil {
		t.Fatalf("resumed build: %v", err)
	}
	for _, d := range damaged {
		if !fetched[d] {
			t.Errorf("the damaged blob %s was not fetched again", d)
		}
	}
	for _, d := range sound {
		if fetched[d] {
			t.Errorf("the sound blob %s, left by the first run, was fetched again", d)
		}
	}
	if _, err := bundle.Verify(context.Background(), res.Path, bundle.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(staging); len(left) != 0 {
		t.Errorf("a successful build left staging data: %v", left)
	}
	if left, _ := os.ReadDir(filepath.Dir(out)); len(left) != 1 {
		t.Errorf("a successful build left %v beside the archive", left)
	}
}

// damagePlacedBlobs flips the first byte of the first n blobs the journal
// in staging lists in the partial archive of out, and returns the digests
// of the damaged blobs and of the others it lists.
func damagePlacedBlobs(t *testing.T, staging, out string, n int) (damaged, sound []string) {
	t.Helper()
	journals, _ := filepath.Glob(filepath.Join(staging, "*", "placed"))
	if len(journals) != 1 {
		t.Fatalf("journals in %s: %v", staging, journals)
	}
	b, err := os.ReadFile(journals[0])
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] { // after the header
		var dg string
		var size, off int64
		if _, err := fmt.Sscan(l, &dg, &size, &off); err != nil {
			t.Fatalf("journal line %q: %v", l, err)
		}
		if i >= n {
			sound = append(sound, dg)
			continue
		}
		c := make([]byte, 1)
		if _, err := f.ReadAt(c, off); err != nil {
			t.Fatal(err)
		}
		c[0] ^= 0xff
		if _, err := f.WriteAt(c, off); err != nil {
			t.Fatal(err)
		}
		damaged = append(damaged, dg)
	}
	return damaged, sound
}
