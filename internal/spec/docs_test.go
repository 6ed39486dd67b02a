package spec

import (
	"os"
	"strings"
	"testing"
)

const specDoc = "../../docs/spec.md"

// yamlFences returns the contents of the ```yaml blocks in a Markdown file.
func yamlFences(t *testing.T, doc string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```yaml":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("unterminated ```yaml block")
	}
	return blocks
}

func TestDocExamplesParse(t *testing.T) {
	data, err := os.ReadFile(specDoc)
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlFences(t, string(data))
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples in %s, want at least 2", len(blocks), specDoc)
	}
	sch := compileSchema(t)
	for i, b := range blocks {
		if _, err := Parse([]byte(b), ""); err != nil {
			t.Errorf("example %d in %s: %v\n%s", i+1, specDoc, err, b)
		}
		if err := sch.Validate(yamlInstance(t, []byte(b))); err != nil {
			t.Errorf("example %d in %s fails the JSON Schema: %v", i+1, specDoc, err)
		}
	}
}

// TestDocCoversEveryField checks that docs/spec.md has a table row for
// every field of every type.
func TestDocCoversEveryField(t *testing.T) {
	data, err := os.ReadFile(specDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for key := range fieldDocs {
		if strings.HasPrefix(key, "Lifecycle.") {
			// The five phases share one paragraph.
			if !strings.Contains(doc, "`"+strings.TrimPrefix(key, "Lifecycle.")+"`") {
				t.Errorf("%s does not mention %s", specDoc, key)
			}
			continue
		}
		_, name, _ := strings.Cut(key, ".")
		if !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("%s has no table row for %s", specDoc, key)
		}
	}
}
