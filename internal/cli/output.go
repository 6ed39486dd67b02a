package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats of -o: every verb that prints a result takes them.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// formatFlag is the value of -o/--output: the output format. A value that
// is not a format, on a verb whose -o used to name the file it writes, is
// refused with the flag to use instead.
type formatFlag struct {
	v        string
	fileFlag string // the flag that names the output file now, if any
}

func (f *formatFlag) String() string { return f.v }
func (f *formatFlag) Type() string   { return "format" }

func (f *formatFlag) Set(s string) error {
	if slices.Contains([]string{formatTable, formatJSON, formatYAML}, s) {
		f.v = s
		return nil
	}
	if s == "text" { // the name some verbs used for table
		f.v = formatTable
		return nil
	}
	if f.fileFlag != "" {
		return fmt.Errorf("-o selects the output format (table, json or yaml); to write the file %s, use %s %s", s, f.fileFlag, s)
	}
	return fmt.Errorf("unknown output format %q: use table, json or yaml", s)
}

// addFormat registers -o/--output on cmd. fileFlag names the flag that
// writes the verb's output file, for verbs whose -o named that file
// before ("" for none).
func addFormat(cmd *cobra.Command, fileFlag string) *formatFlag {
	f := &formatFlag{v: formatTable, fileFlag: fileFlag}
	cmd.Flags().VarP(f, "output", "o", "output format: table, json or yaml")
	return f
}

// print writes the result v as JSON or YAML when -o asks for it (keys
// lowerCamelCase, as the result types declare them); otherwise it calls
// table, which writes the human-readable form.
func (a *app) print(f *formatFlag, v any, table func() error) error {
	switch f.v {
	case formatJSON:
		enc := json.NewEncoder(a.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case formatYAML:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return err
		}
		_, err = a.streams.Out.Write(y)
		return err
	}
	return table()
}

// outputFile registers --output-file on cmd.
func outputFile(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "output-file", "", usage)
}

// migrateOutput reserves -o on a verb that writes a file and prints no
// structured result yet: -o used to name the file, so any value is refused
// with the flag that names it now.
func migrateOutput(cmd *cobra.Command, fileFlag string) {
	f := &formatFlag{fileFlag: fileFlag, v: formatTable}
	cmd.Flags().VarP(&onlyTable{f}, "output", "o", "output format: table (the file is named by "+fileFlag+")")
}

// onlyTable is a formatFlag that accepts table only.
type onlyTable struct{ *formatFlag }

func (o *onlyTable) Set(s string) error {
	if s == formatTable || s == "text" {
		return nil
	}
	if s == formatJSON || s == formatYAML {
		return fmt.Errorf("this command prints no %s result: omit -o", s)
	}
	return o.formatFlag.Set(s)
}

// warn reports one warning, once: a "skiff: warning:" line for people, or
// with --log-format json a log record like the others.
func (a *app) warn(msg string) {
	if strings.EqualFold(a.logFmt, "json") && a.log != nil {
		a.log.Warn(msg)
		return
	}
	fmt.Fprintln(errOut{a}, "skiff: warning: "+msg)
}

// oneLine fits s into one table cell: lines joined with "; ", tabs and
// runs of spaces collapsed, so a multi-line description keeps the table.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
