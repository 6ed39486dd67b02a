package build_test

import (
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
)

// filesSpec writes a package that carries one file and may depend on base.
func filesSpec(t *testing.T, dir, name, version, dep string) string {
	t.Helper()
	deps := ""
	if dep != "" {
		deps = fmt.Sprintf("dependencies:\n  - name: %s\n    version: %q\n", dep, "^1.0.0")
	}
	return fixture.WriteFiles(t, dir, map[string]string{
		"skiff.yaml": fmt.Sprintf("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: %s, version: %s}\nfiles:\n  - source: note.txt\n%s", name, version, deps),
		"note.txt":   name + " " + version + "\n",
	})
}

// TestLockHonoured: build --with-deps keeps the dependency skiff.lock pins
// when a newer one appears, until told to update; a pinned archive that is
// gone is an error naming --update-deps.
func TestLockHonoured(t *testing.T) {
	ctx := context.Background()
	deps, out := t.TempDir(), t.TempDir()
	buildBase := func(version string) string {
		p := filepath.Join(deps, "base-"+version+".skiff")
		if _, err := build.Build(ctx, build.Options{Spec: filesSpec(t, t.TempDir(), "base", version, ""), Output: p}); err != nil {
			t.Fatalf("build base %s: %v", version, err)
		}
		return p
	}
	base10 := buildBase("1.0.0")
	app := filesSpec(t, t.TempDir(), "app", "1.0.0", "base")
	resolved := func(update bool) (string, error) {
		res, err := build.Build(ctx, build.Options{Spec: app, Output: filepath.Join(out, "app.skiff"), WithDeps: true, DepArchives: []string{deps}, UpdateDeps: update, DepOpen: bundle.OpenOptions{SkipSignature: true}})
		if err != nil {
			return "", err
		}
		return res.Description.Dependencies[0].Resolved, nil
	}
	if v, err := resolved(false); err != nil || v != "1.0.0" {
		t.Fatalf("first build: %q, %v", v, err)
	}
	lock, err := build.ReadLock(app)
	if err != nil || len(lock.Dependencies) != 1 || lock.Dependencies[0].Resolved != "1.0.0" {
		t.Fatalf("skiff.lock: %+v, %v", lock, err)
	}

	buildBase("1.1.0")
	if v, err := resolved(false); err != nil || v != "1.0.0" {
		t.Fatalf("with 1.1.0 available, the lock keeps 1.0.0: got %q, %v", v, err)
	}
	if v, err := resolved(true); err != nil || v != "1.1.0" {
		t.Fatalf("--update-deps: got %q, %v; want 1.1.0", v, err)
	}
	if lock, _ := build.ReadLock(app); lock.Dependencies[0].Resolved != "1.1.0" {
		t.Fatalf("the lock was not updated: %+v", lock)
	}

	// Back to 1.0.0 pinned, then 1.0.0 is gone.
	if _, err := resolved(true); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(deps, "base-1.1.0.skiff"))
	if _, err := resolved(true); err != nil {
		t.Fatal(err)
	}
	os.Remove(base10)
	buildBase("1.1.0")
	_, err = resolved(false)
	if !errors.Is(err, build.ErrDependencyNotFound) || !strings.Contains(err.Error(), "--update-deps") || !strings.Contains(err.Error(), "pins base 1.0.0") {
		t.Fatalf("pinned archive gone: %v", err)
	}
}
