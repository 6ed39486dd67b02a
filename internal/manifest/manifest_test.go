package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "m/b.yaml", "kind: B\n")
	write(t, dir, "m/a.yml", "kind: A\n---\nkind: A2\n")
	write(t, dir, "m/sub/c.json", `{"kind":"C"}`)
	write(t, dir, "m/readme.txt", "not yaml")
	one := write(t, dir, "one.yaml", "kind: One\n")
	got, err := Collect([]string{filepath.Join(dir, "m"), one})
	if err != nil {
		t.Fatal(err)
	}
	want := "kind: A\n---\nkind: A2\n---\nkind: B\n---\n{\"kind\":\"C\"}\n---\nkind: One\n"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCollectEmpty(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "empty.yaml", "\n")
	_, err := Collect([]string{dir})
	if !errors.Is(err, ErrNoManifests) {
		t.Fatalf("got %v, want ErrNoManifests", err)
	}
}

func TestCollectSymlink(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "outside.yaml", "kind: X\n")
	if err := os.MkdirAll(filepath.Join(dir, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "outside.yaml"), filepath.Join(dir, "m", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := Collect([]string{filepath.Join(dir, "m")})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("got %v, want a symbolic link error", err)
	}
}

func TestKustomize(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "kustomization.yaml", "namePrefix: demo-\nresources:\n- cm.yaml\nimages:\n- name: app\n  newName: 127.0.0.1:5000/app\n  newTag: \"2\"\n")
	write(t, dir, "cm.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: app\n")
	got, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: demo-p", "image: 127.0.0.1:5000/app:2"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if _, err := Kustomize(t.TempDir()); err == nil {
		t.Error("want an error for a directory without kustomization.yaml")
	}
}
