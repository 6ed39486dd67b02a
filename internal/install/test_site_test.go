package install

import (
	"context"
	"errors"
	"testing"
)

// testFiles is a one-chart package with a test hook.
func testFiles(version string) map[string]string {
	return map[string]string{
		"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: tested, version: ` + version + `}
charts:
  - {name: web, path: charts/web}
`,
		"charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/templates/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
`,
		// A test hook; the fake runs any kind (a real one is a Pod).
		"charts/web/templates/test.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-test
  annotations: {helm.sh/hook: test}
`,
	}
}

// upgrade --install installs a missing deployment, then upgrades it; skiff
// test runs the chart's test hooks and fails when one fails.
func TestUpgradeInstallAndTestInMemory(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	v1 := buildPackage(t, testFiles("1.0.0"))
	v2 := buildPackage(t, testFiles("1.1.0"))

	if _, err := Upgrade(ctx, v1, f.options("tested", "qa")); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("upgrade of a missing deployment: %v, want ErrNotInstalled", err)
	}
	o := f.options("tested", "qa")
	o.InstallMissing = true
	res, err := Upgrade(ctx, v1, o)
	if err != nil {
		t.Fatalf("upgrade --install (missing): %v", err)
	}
	if res.Record.Revision != 1 || res.Record.Description != "install complete" {
		t.Errorf("upgrade --install of a missing deployment: revision %d, %q", res.Record.Revision, res.Record.Description)
	}
	if res, err = Upgrade(ctx, v2, o); err != nil || res.Record.Revision != 2 || res.Record.Package.Version != "1.1.0" {
		t.Fatalf("upgrade --install (present): %v", err)
	}

	results, err := Test(ctx, f.cluster(), "qa", "tested", TestOptions{})
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	if len(results) != 1 || len(results[0].Hooks) != 1 || results[0].Hooks[0].Name != "web-test" || results[0].Hooks[0].Phase != "Succeeded" {
		t.Errorf("test results: %+v", results)
	}
	f.helm.fail = func(op, name string) error {
		if op == "test" {
			return errors.New("pod web-test failed")
		}
		return nil
	}
	if _, err := Test(ctx, f.cluster(), "qa", "tested", TestOptions{}); !errors.Is(err, ErrTestsFailed) {
		t.Errorf("failing test hook: %v, want ErrTestsFailed", err)
	}
}
