package depcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/skiffhq/skiff"

// rules: an import prefix and the only package directories allowed to
// import it directly.
var rules = []struct {
	prefix  string
	allowed []string
}{
	{"helm.sh/helm/", []string{"internal/chart"}},
	{"k8s.io/client-go", []string{"internal/kube"}},
	{"sigs.k8s.io/controller-runtime", []string{"internal/kube"}},
	{"github.com/fluxcd/cli-utils", []string{"internal/kube"}},
	{"github.com/distribution/distribution/v3/registry", []string{"internal/registry"}},
}

func TestImportBoundaries(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	fset := token.NewFileSet()
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if name == "testdata" || name == "vendor" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if dir == "api/v1alpha1" && strings.HasPrefix(p, module+"/") {
				t.Errorf("%s imports %s: api types must not import the module's packages", rel, p)
			}
			for _, r := range rules {
				if !strings.HasPrefix(p, r.prefix) {
					continue
				}
				ok := false
				for _, a := range r.allowed {
					if dir == a || strings.HasPrefix(dir, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s: only %v may import %s", rel, p, r.allowed, r.prefix)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 3 {
		t.Fatalf("checked only %d files: is the walk rooted right?", checked)
	}
}
