package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/release"
)

// goldenSteps is a lifecycle with every kind of step.
var goldenSteps = &bundle.Description{Name: "shop", Version: "1.0.0", Spec: &v1alpha1.Package{Lifecycle: &v1alpha1.Lifecycle{
	PreInstall: []v1alpha1.Step{
		{Name: "seed data", Apply: "seed", Timeout: "5m"},
		{Name: "check the site", Run: &v1alpha1.RunStep{Command: "./bin/check.sh", Args: []string{"--strict", "two words"}}, Timeout: "1m"},
	},
	PostInstall: []v1alpha1.Step{{Name: "app ready", Wait: "deployment/app", Timeout: "10m"}},
	PreUpgrade: []v1alpha1.Step{
		{Name: "migrate", Job: &v1alpha1.JobStep{Image: "registry.example.com/team/migrate:2.1.0", Command: []string{"migrate"}, Args: []string{"up"}}, Timeout: "15m"},
		{Name: "count", Run: &v1alpha1.RunStep{Command: `ls "$1" | wc -l`, Args: []string{"etc"}, Shell: true}, Timeout: "5m"},
	},
	PreDelete: []v1alpha1.Step{{Name: "goodbye", Run: &v1alpha1.RunStep{Command: "kubectl", Args: []string{"annotate", "ns", "shop", "bye=1"}}, Timeout: "5m"}},
}}}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./internal/cli -run %s -update", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./internal/cli -run %s -update):\n--- got\n%s--- want\n%s", path, t.Name(), got, want)
	}
}

// The steps skiff inspect lists.
func TestInspectLifecycleGolden(t *testing.T) {
	var b bytes.Buffer
	printLifecycle(&b, install.LifecycleSteps(goldenSteps))
	checkGolden(t, "inspect-lifecycle.txt", b.Bytes())
}

// What skiff diff prints: object changes, then the steps that would run,
// which do not count as changes.
func TestDiffStepsGolden(t *testing.T) {
	var b bytes.Buffer
	changes := append([]install.Change{{Op: "change", Component: "web", Object: "ConfigMap shop/web-config", Diff: "-a: 1\n+a: 2\n"}}, install.StepChanges(goldenSteps, true)...)
	if n := printChanges(&b, changes); n != 1 {
		t.Errorf("printChanges counted %d changes, want 1", n)
	}
	b.WriteString("---\n")
	if n := printChanges(&b, install.StepChanges(goldenSteps, false)); n != 0 {
		t.Errorf("printChanges counted %d changes, want 0", n)
	}
	checkGolden(t, "diff-steps.txt", b.Bytes())
}

// The steps a revision ran, as skiff status shows them.
func TestStatusStepsGolden(t *testing.T) {
	var b bytes.Buffer
	printStepRuns(&b, []release.StepRun{
		{Phase: "preInstall", Name: "check the site", Kind: "run", Result: "succeeded", ExitCode: 0, Duration: "1.2s"},
		{Phase: "preUpgrade", Name: "migrate", Kind: "job", Result: "failed", Duration: "3m0s", Job: "shop/shop-migrate-3f2a1b"},
		{Phase: "postUpgrade", Name: "slow", Kind: "run", Result: "timed out", ExitCode: -1, Duration: "5m0s"},
	})
	checkGolden(t, "status-steps.txt", b.Bytes())
}
