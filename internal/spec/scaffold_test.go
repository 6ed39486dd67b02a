package spec

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestScaffold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"demo", "demo"},
		{"My App", "my-app"},
		{"--x__y--", "x-y"},
		{"", "my-package"},
		{"日本", "my-package"},
		{strings.Repeat("a", 100), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, Scaffold(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if s.Metadata.Name != tt.want {
				t.Errorf("name = %q, want %q", s.Metadata.Name, tt.want)
			}
		})
	}
}

// TestScaffoldCommentedExamples uncomments the commented-out YAML in the
// scaffold and checks that it still parses, so the examples stay right.
func TestScaffoldCommentedExamples(t *testing.T) {
	yamlLine := regexp.MustCompile(`^(\s*)# ((?:- )?[A-Za-z]+:(?: .*)?|\s+.*)$`)
	var b strings.Builder
	n := 0
	for _, line := range strings.Split(string(Scaffold("demo")), "\n") {
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			line = m[1] + m[2]
			n++
		}
		b.WriteString(line + "\n")
	}
	if n < 20 {
		t.Fatalf("uncommented only %d lines; the pattern no longer matches the scaffold", n)
	}
	s, err := Parse([]byte(b.String()), "")
	if err != nil {
		t.Fatalf("uncommented scaffold: %v\n%s", err, b.String())
	}
	if len(s.Manifests) != 2 || len(s.Charts) != 2 || s.NetworkPolicy == nil || len(s.Metadata.Maintainers) != 1 {
		t.Errorf("uncommented scaffold is missing examples: %+v", s.Package)
	}
}
