package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md")

// TestCLIReference keeps docs/cli.md, the generated command reference, in
// sync with the commands: `go test ./internal/cli -run CLIReference -update`
// rewrites it.
func TestCLIReference(t *testing.T) {
	a := &app{streams: Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}}
	root := a.root()
	root.DisableAutoGenTag = true
	var buf bytes.Buffer
	buf.WriteString("# skiff command reference\n\nGenerated from the commands by `go test ./internal/cli -run CLIReference -update`; do not edit.\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c != root {
			writeCommand(&buf, c)
		} else {
			buf.WriteString("\n" + strings.TrimSpace(c.Long) + "\n\nGlobal flags:\n\n```\n" + c.PersistentFlags().FlagUsages() + "```\n")
		}
		subs := c.Commands()
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			walk(s)
		}
	}
	walk(root)
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./internal/cli -run CLIReference -update", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("docs/cli.md is out of date: run go test ./internal/cli -run CLIReference -update")
	}
}

func writeCommand(buf *bytes.Buffer, c *cobra.Command) {
	buf.WriteString("\n## " + c.CommandPath() + "\n\n")
	buf.WriteString(c.Short + "\n\n")
	if c.Long != "" {
		buf.WriteString(strings.TrimSpace(c.Long) + "\n\n")
	}
	if c.Runnable() {
		buf.WriteString("```\n" + c.UseLine() + "\n```\n")
	}
	if fl := c.NonInheritedFlags().FlagUsages(); strings.TrimSpace(fl) != "" {
		buf.WriteString("\nFlags:\n\n```\n" + fl + "```\n")
	}
}
