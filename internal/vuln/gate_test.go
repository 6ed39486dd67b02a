package vuln_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
	"github.com/skiffhq/skiff/internal/vuln"
)

// buildPackage builds an unsigned package carrying image and a ConfigMap.
func buildPackage(t *testing.T, name, image string) *install.Package {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata:\n  name: %s\n  version: 1.0.0\nimages:\n  - %s\nmanifests:\n  - name: config\n    files: [cm.yaml]\n", name, image)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  k: v\n"
	os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte(cm), 0o644)
	out := filepath.Join(dir, name+".skiff")
	if _, err := build.Build(t.Context(), build.Options{Spec: dir, Output: out}); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	p, err := install.Open(t.Context(), out, bundle.OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestInstallGate(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	up := fixture.Registry(t)
	sbomtest.PushLayers(t, up+"/gate/pkgs:1", "linux/amd64", sbomtest.Image(t))
	fixture.PushImage(t, up+"/gate/clean:1", fixture.ImageOptions{Layers: []int{1024}, Seed: 3})
	vulnerable := buildPackage(t, "vulnerable", up+"/gate/pkgs:1")
	clean := buildPackage(t, "clean", up+"/gate/clean:1")

	dbDir := t.TempDir()
	if _, err := vuln.Import(t.Context(), dbDir, advisoryDir(t)); err != nil {
		t.Fatal(err)
	}
	db, err := vuln.Open(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	gate := func(ctx context.Context, p *install.Package) error {
		rep, err := vuln.ScanPackage(ctx, db, p.Archive, p.Description, "")
		if err != nil {
			return err
		}
		return vuln.Evaluate(rep, vuln.Policy{FailOn: vuln.SeverityHigh}, time.Now())
	}
	airgapHost := fixture.Registry(t)
	ns := fmt.Sprintf("vuln-gate-%d", time.Now().UnixNano()%1_000_000_000)
	o := install.Options{
		Namespace: ns, Cluster: install.Cluster{Kubeconfig: kubeconfig},
		Load: install.LoadOptions{Registry: airgapHost + "/airgap"}, Timeout: time.Minute, Gate: gate,
	}
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	_, err = install.Install(ctx, vulnerable, o)
	if !errors.Is(err, vuln.ErrBlocked) {
		t.Fatalf("Install(vulnerable) = %v, want ErrBlocked", err)
	}
	// Nothing was touched: no namespace, no record, no image.
	if _, err := kc.Get(ctx, kube.ObjectRef{Version: "v1", Kind: "Namespace", Name: ns}); !errors.Is(err, kube.ErrNotFound) {
		t.Errorf("namespace %s after a blocked install: %v", ns, err)
	}
	store := release.NewStore(release.NewSecrets(kc), release.StoreOptions{})
	if _, err := store.Latest(ctx, ns, "vulnerable"); !errors.Is(err, release.ErrNotFound) {
		t.Errorf("release record after a blocked install: %v", err)
	}
	reg, err := remote.NewRegistry(airgapHost)
	if err != nil {
		t.Fatal(err)
	}
	reg.PlainHTTP = true
	reg.Repositories(ctx, "", func(repos []string) error {
		if len(repos) > 0 {
			t.Errorf("registry holds %v after a blocked install", repos)
		}
		return nil
	})
	// Dry runs are gated too; upgrades as well.
	do := o
	do.DryRun, do.DryRunOut = true, &discard{}
	if _, err := install.Install(ctx, vulnerable, do); !errors.Is(err, vuln.ErrBlocked) {
		t.Errorf("dry run = %v", err)
	}
	if _, err := install.Upgrade(ctx, vulnerable, o); !errors.Is(err, vuln.ErrBlocked) {
		t.Errorf("Upgrade(vulnerable) = %v", err)
	}

	// A clean package passes the gate and installs.
	t.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		_ = install.Uninstall(ctx, ns, "clean", install.UninstallOptions{Cluster: o.Cluster, NoWait: true})
		_ = kc.Delete(ctx, []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: ns}}, kube.DeleteOptions{})
	})
	res, err := install.Install(ctx, clean, o)
	if err != nil {
		t.Fatalf("Install(clean) = %v", err)
	}
	if res.Record.Status != release.StatusDeployed {
		t.Errorf("status = %s", res.Record.Status)
	}
	if _, err := kc.Get(ctx, kube.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "clean"}); err != nil {
		t.Errorf("ConfigMap of the clean package: %v", err)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
