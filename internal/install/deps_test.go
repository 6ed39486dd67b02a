package install_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/release"
	"github.com/skiffhq/skiff/internal/sign"
)

// depSpec writes a one-manifest package that may depend on another.
func depSpec(t *testing.T, reg, name, dep string) string {
	t.Helper()
	dir := t.TempDir()
	deps := ""
	if dep != "" {
		deps = fmt.Sprintf("dependencies:\n  - name: %s\n    version: \"^1.0.0\"\n", dep)
	}
	spec := fmt.Sprintf("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: %s, version: 1.0.0}\nmanifests:\n  - name: app\n    files: [app.yaml]\n%s", name, deps)
	app := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
        - name: c
          image: %[2]s/dep/%[1]s:1
`, name, reg)
	return fixture.WriteFiles(t, dir, map[string]string{"skiff.yaml": spec, "app.yaml": app})
}

func TestDependencyChain(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	reg := fixture.Registry(t)
	for i, n := range []string{"base", "mid", "top"} {
		fixture.PushImage(t, reg+"/dep/"+n+":1", fixture.ImageOptions{Layers: []int{1024}, Seed: int64(100 + i)})
	}
	key, _ := sign.GenerateKey()
	pub, _ := sign.MarshalPublicKey(key.Public())
	trustDir := t.TempDir()
	if err := sign.AddTrusted(trustDir, pub, "t"); err != nil {
		t.Fatal(err)
	}
	trust, _ := sign.LoadTrust(trustDir)
	out := t.TempDir()
	buildPkg := func(name, dep, depDir string, withDeps bool) string {
		path := filepath.Join(out, name+map[bool]string{true: "", false: "-nodeps"}[withDeps]+".skiff")
		_, err := build.Build(ctx, build.Options{Spec: depSpec(t, reg, name, dep), Output: path, SignKey: key,
			WithDeps: withDeps, DepArchives: []string{depDir}, DepOpen: bundle.OpenOptions{Trust: trust}})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		return path
	}
	baseDir, midDir := t.TempDir(), t.TempDir()
	base := buildPkg("base", "", "", false)
	os.Rename(base, filepath.Join(baseDir, "base.skiff"))
	mid := buildPkg("mid", "base", baseDir, true)
	os.Rename(mid, filepath.Join(midDir, "mid.skiff"))
	top := buildPkg("top", "mid", midDir, true)
	topNoDeps := buildPkg("top", "mid", midDir, false)

	// a dependency that cannot be resolved at build time
	if _, err := build.Build(ctx, build.Options{Spec: depSpec(t, reg, "top", "mid"), Output: filepath.Join(out, "x.skiff"),
		WithDeps: true, DepArchives: []string{baseDir}}); !errors.Is(err, build.ErrDependencyNotFound) {
		t.Fatalf("build with a missing dependency: got %v, want ErrDependencyNotFound", err)
	}

	ns := "skiff-e2e-deps"
	cluster := install.Cluster{Kubeconfig: kubeconfig}
	opts := func(name string) install.Options {
		return install.Options{Deployment: name, Namespace: ns, Cluster: cluster, Load: install.LoadOptions{Registry: fixture.Registry(t) + "/deps"}, Timeout: time.Minute}
	}
	if _, err := install.Install(ctx, openArchive(t, topNoDeps, trust), opts("top")); !errors.Is(err, install.ErrDependencyMissing) {
		t.Fatalf("install without its dependencies: got %v, want ErrDependencyMissing", err)
	}
	if _, err := install.Install(ctx, openArchive(t, top, trust), opts("top")); err != nil {
		t.Fatalf("install top: %v", err)
	}
	store, err := install.Records(cluster)
	if err != nil {
		t.Fatal(err)
	}
	var created []time.Time
	for _, n := range []string{"base", "mid", "top"} {
		r, err := store.Latest(ctx, ns, n)
		if err != nil || r.Status != release.StatusDeployed {
			t.Fatalf("%s: record %v, err %v", n, r, err)
		}
		created = append(created, r.Created)
	}
	if created[0].After(created[1]) || created[1].After(created[2]) {
		t.Errorf("install order by record time: %v, want base, mid, top", created)
	}
	un := install.UninstallOptions{Cluster: cluster}
	for _, n := range []string{"base", "mid"} {
		if err := install.Uninstall(ctx, ns, n, un); !errors.Is(err, install.ErrRequired) {
			t.Errorf("uninstall %s: got %v, want ErrRequired", n, err)
		}
	}
	for _, n := range []string{"top", "mid", "base"} {
		if err := install.Uninstall(ctx, ns, n, un); err != nil {
			t.Errorf("uninstall %s: %v", n, err)
		}
	}
}
