package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics on any input, and that a spec
// it accepts survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdata, "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Scaffold("fuzz"))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Add([]byte("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: x, version: 1.0.0}\ncharts: [{name: c, path: c, values: {1: 2, true: 1.5, x: [~, !!binary aGk=]}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "")
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned a spec and an error")
			}
			return
		}
		out, err := Marshal(&s.Package)
		if err != nil {
			t.Fatalf("Marshal of a parsed spec: %v", err)
		}
		s2, err := Parse(out, "")
		if err != nil {
			t.Fatalf("re-parse: %v\ninput:\n%s\nmarshaled:\n%s", err, data, out)
		}
		assertSamePackage(t, &s.Package, &s2.Package)
	})
}
