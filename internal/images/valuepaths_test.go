package images

import (
	"maps"
	"testing"
)

func TestValuePaths(t *testing.T) {
	m := Map{
		"docker.io/library/nginx:1.27": "site.example/mirror/docker.io/library/nginx@sha256:" + hex64,
		"quay.io/org/agent:v2":         "site.example/mirror/quay.io/org/agent@sha256:" + hex64,
		"registry.example/team/app:1":  "site.example/mirror/registry.example/team/app@sha256:" + hex64,
	}
	defaults := map[string]any{
		"image": "nginx:1.27", // short form, normalized
		"agent": map[string]any{
			"image": map[string]any{"registry": "quay.io", "repository": "org/agent", "tag": "v2", "pullPolicy": "IfNotPresent"},
		},
		"sub": map[string]any{
			"app":   map[string]any{"repository": "registry.example/team/app", "tag": 1.0},
			"other": "nginx:1.26",  // not in the package
			"text":  "hello world", // not a reference
		},
		"dotted.key": "nginx:1.27", // cannot be a dotted path
		"list":       []any{"nginx:1.27"},
	}
	want := map[string]string{
		"image":       "nginx:1.27",
		"agent.image": "quay.io/org/agent:v2",
		"sub.app":     "registry.example/team/app:1",
	}
	got := ValuePaths(defaults, m)
	if !maps.Equal(got, want) {
		t.Fatalf("ValuePaths = %v, want %v", got, want)
	}
	// What SetValues makes of them.
	vals := map[string]any{}
	if err := SetValues(vals, defaults, got, m); err != nil {
		t.Fatal(err)
	}
	if vals["image"] != m["docker.io/library/nginx:1.27"] {
		t.Errorf("image = %v", vals["image"])
	}
	ag := vals["agent"].(map[string]any)["image"].(map[string]any)
	if ag["registry"] != "site.example" || ag["repository"] != "mirror/quay.io/org/agent" || ag["tag"] != "v2" {
		t.Errorf("agent.image = %v", ag)
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
