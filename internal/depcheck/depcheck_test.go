package depcheck

import (
	"go/build"
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

// forbiddenDeps: a package and module packages it must not depend on,
// directly or not, outside its tests. The hub client speaks the hub's
// wire format (internal/hubapi) and must not pull in the server with
// its storage and database drivers.
var forbiddenDeps = []struct {
	pkg       string
	forbidden []string
}{
	{"internal/hubclient", []string{"internal/hub"}},
	{"internal/hubapi", []string{"internal/hub", "internal/hubclient"}},
}

func TestForbiddenDependencies(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range forbiddenDeps {
		t.Run(tc.pkg, func(t *testing.T) {
			deps := moduleDeps(t, root, tc.pkg)
			for _, f := range tc.forbidden {
				if via, ok := deps[f]; ok {
					t.Errorf("%s depends on %s (imported by %s): move what it needs to a package both can import", tc.pkg, f, via)
				}
			}
		})
	}
}

// moduleDeps returns the module packages pkg depends on outside its
// tests, including itself, each with a package importing it.
func moduleDeps(t *testing.T, root, pkg string) map[string]string {
	t.Helper()
	deps := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		bp, err := build.ImportDir(filepath.Join(root, filepath.FromSlash(p)), 0)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if _, seen := deps[rel]; !seen {
				deps[rel] = p
				queue = append(queue, rel)
			}
		}
	}
	return deps
}
