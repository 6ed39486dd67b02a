package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

const testdata = "testdata/v1alpha1"

// wants returns the "# want: " lines of a test file.
func wants(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			out = append(out, w)
		}
	}
	return out
}

func TestLoadValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "valid-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			s, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			abs, _ := filepath.Abs(f)
			if s.Path != abs || s.Dir != filepath.Dir(abs) {
				t.Errorf("Path, Dir = %q, %q; want %q, %q", s.Path, s.Dir, abs, filepath.Dir(abs))
			}
			// The same bytes parse without a directory too.
			data, _ := os.ReadFile(f)
			if _, err := Parse(data, ""); err != nil {
				t.Errorf("Parse without dir: %v", err)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "invalid-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := wants(t, data)
			if len(want) == 0 {
				t.Fatalf("%s has no \"# want: \" lines", f)
			}
			_, err = Load(f)
			if err == nil {
				t.Fatalf("Load succeeded; want an error")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name string
		file string
		want error
	}{
		{"syntax", "invalid-syntax.yaml", ErrSyntax},
		{"apiVersion", "invalid-apiversion.yaml", ErrUnknownAPIVersion},
		{"no apiVersion", "invalid-no-apiversion.yaml", ErrUnknownAPIVersion},
		{"kind", "invalid-kind.yaml", ErrUnknownKind},
		{"unknown field", "invalid-unknown-field.yaml", ErrInvalid},
		{"rules", "invalid-charts.yaml", ErrInvalid},
		{"missing", "does-not-exist.yaml", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(filepath.Join(testdata, tt.file))
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want errors.Is %v", err, tt.want)
			}
		})
	}
}

func TestNotFoundMessage(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	want := "skiff.yaml not found at " + filepath.Join(dir, "skiff.yaml") + ": run `skiff init` to create one"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestValidationErrorList(t *testing.T) {
	_, err := Load(filepath.Join(testdata, "invalid-charts.yaml"))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %T, want *ValidationError", err)
	}
	if len(ve.Errors) < 10 {
		t.Errorf("got %d problems, want every problem reported:\n%v", len(ve.Errors), err)
	}
	for _, fe := range ve.Errors {
		if fe.Line == 0 || fe.Path == "" {
			t.Errorf("problem without a position or path: %+v", fe)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), Scaffold("demo"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path != filepath.Join(dir, FileName) {
		t.Errorf("Path = %q", s.Path)
	}
}

func TestParseChecksFilesOnlyWithDir(t *testing.T) {
	data := []byte(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: x, version: 1.0.0}
manifests:
  - name: m
    files: [nope.yaml]
`)
	if _, err := Parse(data, ""); err != nil {
		t.Errorf("Parse without dir: %v", err)
	}
	_, err := Parse(data, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "nope.yaml does not exist") {
		t.Errorf("Parse with dir: got %v, want a missing-file error", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: x, version: 1.0.0}
charts:
  - name: podinfo
    repo: oci://ghcr.io/stefanprodan/charts
    version: 6.7.1
  - name: local
    path: chart
files:
  - source: dir/sub/app.conf
  - source: dir/tree/
  - source: b.txt
    target: etc/b.txt
manifests:
  - name: m
    files: [m.yaml]
lifecycle:
  preInstall:
    - name: a
      apply: m
    - name: b
      wait: deployment/x
      timeout: 1m
  preDelete:
    - name: c
      wait: deployment/x
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Platforms, []string{"linux/amd64"}; !reflect.DeepEqual(got, want) {
		t.Errorf("platforms = %v, want %v", got, want)
	}
	if got := s.Charts[0].Chart; got != "podinfo" {
		t.Errorf("charts[0].chart = %q, want podinfo", got)
	}
	if got := s.Charts[1].Chart; got != "" {
		t.Errorf("charts[1].chart = %q, want empty for a local chart", got)
	}
	for i, c := range s.Charts {
		if c.Namespace != "" {
			t.Errorf("charts[%d].namespace = %q, want empty (the install namespace)", i, c.Namespace)
		}
	}
	var targets []string
	for _, f := range s.Files {
		targets = append(targets, f.Target)
	}
	if want := []string{"app.conf", "tree", "etc/b.txt"}; !reflect.DeepEqual(targets, want) {
		t.Errorf("file targets = %v, want %v", targets, want)
	}
	l := s.Lifecycle
	if got := []string{l.PreInstall[0].Timeout, l.PreInstall[1].Timeout, l.PreDelete[0].Timeout}; !reflect.DeepEqual(got, []string{"5m", "1m", "5m"}) {
		t.Errorf("timeouts = %v", got)
	}

	// Default is idempotent.
	before, _ := json.Marshal(s.Package)
	Default(&s.Package)
	after, _ := json.Marshal(s.Package)
	if !bytes.Equal(before, after) {
		t.Errorf("Default is not idempotent:\n%s\n%s", before, after)
	}
}

func TestResolve(t *testing.T) {
	s := &Spec{Dir: "/work/pkg"}
	tests := []struct{ rel, want string }{
		{"charts/a", "/work/pkg/charts/a"},
		{"./values.yaml", "/work/pkg/values.yaml"},
		{"/abs/x", "/abs/x"},
	}
	for _, tt := range tests {
		if got := Resolve(s, tt.rel); got != filepath.FromSlash(tt.want) {
			t.Errorf("Resolve(%q) = %q, want %q", tt.rel, got, tt.want)
		}
	}
	if got := Resolve(&Spec{}, "a/b"); got != filepath.FromSlash("a/b") {
		t.Errorf("Resolve without dir = %q", got)
	}
}

func TestValidateConstructed(t *testing.T) {
	// Validate works on specs built in code, without positions.
	s := &Spec{Package: v1alpha1.Package{
		APIVersion: v1alpha1.APIVersion,
		Kind:       v1alpha1.Kind,
		Metadata:   v1alpha1.Metadata{Name: "ok", Version: "1.0.0"},
		Charts:     []v1alpha1.Chart{{Name: "c"}},
	}}
	Default(&s.Package)
	err := Validate(s)
	if err == nil || !strings.Contains(err.Error(), "charts[0]: chart needs a source") {
		t.Errorf("got %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	s, err := Load(filepath.Join(testdata, "valid-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(&s.Package)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(out, s.Dir)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	assertSamePackage(t, &s.Package, &s2.Package)
}

// assertSamePackage compares packages through their JSON form, so that
// numbers in values compare by value (YAML 1 and 1.0).
func assertSamePackage(t testing.TB, a, b *v1alpha1.Package) {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Errorf("packages differ:\n%s\n%s", ja, jb)
	}
}

func TestNullMeansUnset(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: x, version: 1.0.0, description: ~}
charts: ~
manifests: null
lifecycle:
networkPolicy: {enabled: null, allow: ~}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Charts != nil || s.Manifests != nil || s.Lifecycle != nil || s.NetworkPolicy == nil || s.NetworkPolicy.Enabled {
		t.Errorf("got %+v", s.Package)
	}
}

func TestLimits(t *testing.T) {
	head := "apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: x, version: 1.0.0}\n"
	bomb := head + "charts:\n  - name: c\n    path: c\n    values:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		bomb += "      " + n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	tests := []struct {
		name, data, want string
	}{
		{"alias bomb", bomb, "more than 200000 nodes"},
		{"deep nesting", head + "charts: [{name: c, path: c, values: {a: " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}}]\n", "deeper than"},
		{"too large", head + "description: " + strings.Repeat("x", MaxSize) + "\n", "larger than"},
		{"long description", strings.Replace(head, "version: 1.0.0", "version: 1.0.0, description: "+strings.Repeat("é", MaxDescription+1), 1), "description is 1025 characters long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
