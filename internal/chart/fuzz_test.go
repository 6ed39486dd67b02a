package chart

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func FuzzPickFromIndex(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nentries:\n  demo:\n    - {name: demo, version: 1.0.0, urls: [demo-1.0.0.tgz]}\n    - {name: demo, version: 1.2.0-rc.1}\n"), "^1.0.0")
	f.Add([]byte("entries: {demo: [null, {version: x}]}"), "")
	f.Add([]byte("{}"), ">= 1, < 2")
	f.Fuzz(func(t *testing.T, index []byte, version string) {
		cv, err := pickFromIndex(index, "demo", version)
		if err == nil && cv == nil {
			t.Fatal("no error and no version")
		}
	})
}

func FuzzLoad(f *testing.F) {
	// Seed with a real archive; Render and Client load archives that may
	// come from an untrusted package.
	dir := f.TempDir()
	chartDir := filepath.Join(dir, "c")
	for name, content := range map[string]string{
		"Chart.yaml":          "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"values.yaml":         "a: 1\n",
		"templates/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
		"charts/d/Chart.yaml": "apiVersion: v2\nname: d\nversion: 0.1.0\n",
	} {
		p := filepath.Join(chartDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	a, err := Fetch(context.Background(), Source{Path: chartDir}, FetchOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.Data)
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte("not a chart"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := load(data)
		if err != nil {
			return
		}
		// A loadable chart repackages into a loadable chart.
		if _, err := pack(&tree{ch: ch}); err != nil {
			t.Logf("repack: %v", err)
		}
	})
}
