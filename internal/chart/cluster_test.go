package chart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	release "helm.sh/helm/v4/pkg/release/v1"

	"github.com/skiffhq/skiff/internal/images"
)

// testKubeconfig returns the kubeconfig of the test cluster
// ($SKIFF_TEST_KUBECONFIG, e.g. from hack/k8s-local.sh start --full). It
// skips the test without one, or fails it in CI.
func testKubeconfig(t *testing.T) string {
	t.Helper()
	kc := os.Getenv("SKIFF_TEST_KUBECONFIG")
	if kc == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKIFF_TEST_KUBECONFIG is not set: CI must run the cluster tests (start hack/k8s-local.sh start --full)")
		}
		t.Skip("SKIFF_TEST_KUBECONFIG is not set: start a cluster with hack/k8s-local.sh start --full")
	}
	return kc
}

func TestClusterLifecycle(t *testing.T) {
	kc := testKubeconfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	dir := testChart(t)
	a, err := Fetch(ctx, Source{Path: dir}, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const dgst = "sha256:0123456789012345678901234567890123456789012345678901234567890123"
	m := images.Map{}
	for _, ref := range demoImages {
		target, err := images.Target(ref, images.Destination{Host: "127.0.0.1:5000"}, dgst)
		if err != nil {
			t.Fatal(err)
		}
		m[ref] = target
	}
	relocate := func(in []byte) ([]byte, error) {
		return images.Relocate(in, m, images.RelocateOptions{})
	}

	c, err := NewClient(Config{Kubeconfig: kc, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("chart-test-%d", time.Now().UnixNano()%1e9)
	const name = "demo"

	if _, err := c.Get(ctx, name, ns); !errors.Is(err, ErrReleaseNotFound) {
		t.Fatalf("Get before install: error = %v, want ErrReleaseNotFound", err)
	}

	rel, err := c.Install(ctx, a.Data, InstallOptions{
		Release: name, Namespace: ns, CreateNamespace: true,
		PostRender: relocate, Wait: true, Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if rel.Revision != 1 || rel.Status != "deployed" || rel.Namespace != ns {
		t.Errorf("install: release = %+v", rel)
	}
	if !slices.Equal(rel.CRDs, []string{"widgets.example.com"}) {
		t.Errorf("install: CRDs %v, want the one of crds/", rel.CRDs)
	}
	if !hookExists(t, c, ns, name+"-init") {
		t.Fatal("the ServiceAccount hook was not created")
	}
	assertRelocated(t, c, name, ns)

	// Dry runs change nothing. (A server-side dry run needs the chart's
	// CRDs in the cluster already: Helm does not create them then.)
	if _, err := c.Install(ctx, a.Data, InstallOptions{Release: "other", Namespace: ns, DryRun: true}); err != nil {
		t.Fatalf("dry-run install: %v", err)
	}
	if _, err := c.Get(ctx, "other", ns); !errors.Is(err, ErrReleaseNotFound) {
		t.Fatalf("Get after dry-run install: error = %v, want ErrReleaseNotFound", err)
	}
	if _, err := c.Upgrade(ctx, a.Data, UpgradeOptions{Release: name, Namespace: ns, DryRun: true}); err != nil {
		t.Fatalf("dry-run upgrade: %v", err)
	}
	if rel, err := c.Get(ctx, name, ns); err != nil || rel.Revision != 1 {
		t.Fatalf("Get after dry-run upgrade: %+v, %v; want revision 1", rel, err)
	}

	rel, err = c.Upgrade(ctx, a.Data, UpgradeOptions{
		Release: name, Namespace: ns, Values: map[string]any{"replicas": 2},
		PostRender: relocate, Wait: true, Timeout: 2 * time.Minute, ApplyCRDs: true, MaxHistory: 5,
	})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if rel.Revision != 2 || rel.Status != "deployed" || !strings.Contains(rel.Manifest, "replicas: 2") {
		t.Errorf("upgrade: release = %+v", rel)
	}
	assertRelocated(t, c, name, ns)

	if err := c.Rollback(ctx, name, ns, 1, RollbackOptions{Wait: true, Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	rel, err = c.Get(ctx, name, ns)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Revision != 3 || rel.Status != "deployed" || !strings.Contains(rel.Manifest, "replicas: 1") {
		t.Errorf("after rollback: release = %+v", rel)
	}

	if err := c.Uninstall(ctx, name, ns, UninstallOptions{Wait: true, Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if _, err := c.Get(ctx, name, ns); !errors.Is(err, ErrReleaseNotFound) {
		t.Errorf("Get after uninstall: error = %v, want ErrReleaseNotFound", err)
	}
	// Helm's uninstall leaves before-hook-creation hooks; ours removes them.
	if hookExists(t, c, ns, name+"-init") {
		t.Error("the ServiceAccount hook is left after uninstall")
	}
	if err := c.Uninstall(ctx, name, ns, UninstallOptions{}); !errors.Is(err, ErrReleaseNotFound) {
		t.Errorf("second uninstall: error = %v, want ErrReleaseNotFound", err)
	}
	if _, err := c.Upgrade(ctx, a.Data, UpgradeOptions{Release: "nope", Namespace: ns}); !errors.Is(err, ErrReleaseNotFound) {
		t.Errorf("upgrade of a missing release: error = %v, want ErrReleaseNotFound", err)
	}
}

// assertRelocated checks that the stored release, hooks included, only
// refers to relocated images.
func assertRelocated(t *testing.T, c *Client, name, ns string) {
	t.Helper()
	cfg, _, err := c.action(ns)
	if err != nil {
		t.Fatal(err)
	}
	r, err := action.NewGet(cfg).Run(name)
	if err != nil {
		t.Fatal(err)
	}
	rel := r.(*release.Release)
	all := rel.Manifest
	for _, h := range rel.Hooks {
		all += "\n---\n" + h.Manifest
	}
	if len(rel.Hooks) != 3 {
		t.Errorf("release has %d hooks, want 3 (migrate job, service account, test pod)", len(rel.Hooks))
	}
	refs, err := images.Discover([]byte(all))
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) == 0 {
		t.Fatal("no images in the stored release")
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, "127.0.0.1:5000/") {
			t.Errorf("stored release refers to %s, which was not relocated", ref)
		}
	}
}

// hookExists reports whether ServiceAccount ns/name exists.
func hookExists(t *testing.T, c *Client, ns, name string) bool {
	t.Helper()
	cfg, _, err := c.action(ns)
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: %s}\n", name, ns)
	res, err := cfg.KubeClient.Build(strings.NewReader(y), false)
	if err != nil {
		t.Fatal(err)
	}
	err = res[0].Get()
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatal(err)
	}
	return err == nil
}
