package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/vuln"
)

func init() { register(newVulnDB) }

func newVulnDB(a *app) *cobra.Command {
	var dbDir string
	cmd := &cobra.Command{
		Use:   "vulndb",
		Short: "Manage the offline vulnerability database",
		Long: `The vulnerability database holds OSV advisories for the ecosystems Skiff
scans (Debian, Alpine, Go, npm, PyPI). Download
https://osv-vulnerabilities.storage.googleapis.com/all.zip on the connected
side, carry it across and import it; install and upgrade then gate on it.`,
	}
	cmd.PersistentFlags().StringVar(&dbDir, "db", "", "database directory (default $XDG_DATA_HOME/skiff/vulndb)")
	dir := func() (string, error) {
		if dbDir != "" {
			return dbDir, nil
		}
		return vuln.DefaultDir()
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE",
		Short: "Replace the database with OSV advisories (all.zip, a directory of JSON files or one .json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := dir()
			if err != nil {
				return err
			}
			m, err := vuln.Import(cmd.Context(), d, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "imported %d advisories (%s) into %s; skipped %d; source %s\n",
				m.Advisories, ecosystemCounts(m.Ecosystems), d, m.Skipped, m.SourceDigest)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show what the database holds and how old it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := dir()
			if err != nil {
				return err
			}
			db, err := vuln.Open(d)
			if err != nil {
				return err
			}
			m := db.Meta
			age := time.Since(m.Imported).Round(time.Hour)
			fmt.Fprintf(a.streams.Out, "database: %s\nimported: %s (%s ago)\nsource:   %s\ndigest:   %s\nadvisories: %d (%s)\n",
				d, m.Imported.Format(time.RFC3339), age, m.Source, m.SourceDigest, m.Advisories, ecosystemCounts(m.Ecosystems))
			if age > 30*24*time.Hour {
				a.warn("the advisories are more than 30 days old: import a fresh all.zip")
			}
			return nil
		},
	})
	return cmd
}

func ecosystemCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
