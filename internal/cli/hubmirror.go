package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() {
	registerHub(newHubExport)
	registerHub(newHubImport)
}

// parseSince reads an RFC 3339 time or a duration back from now (168h,
// 30m, or 7d).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return now.Add(-time.Duration(d) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give an RFC 3339 time (2025-06-01T00:00:00Z) or a duration (168h, 7d)", s)
}

func newHubExport(a *app) *cobra.Command {
	var (
		f       hubFlags
		since   string
		out     string
		against string
	)
	cmd := &cobra.Command{
		Use:   "export HUB [--since TIME|DURATION] [--against INVENTORY.json] --output-file export.tar",
		Short: "Export approved packages to carry them to another hub (site administrator)",
		Long: `Export writes one tar holding a manifest (each package's owner, name,
version, root and signatures, and the list of blobs) and every blob of
the packages approved since --since (default: all), each stored once
however many packages share it. With --against, the receiving hub's
inventory (` + "`skiff hub inventory`" + ` there), the blobs that hub holds are
left out. Carry the file to the other hub and run ` + "`skiff hub import`" + ` there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("no output file: pass --output-file export.tar")
			}
			t, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			o := hubclient.ExportOptions{Since: t}
			if against != "" {
				if o.Against, err = hubclient.ReadInventory(against); err != nil {
					return err
				}
			}
			c, err := f.mustLogin(args[0])
			if err != nil {
				return err
			}
			m, err := c.Export(cmd.Context(), out, o)
			if err != nil {
				return err
			}
			for _, e := range m.Packages {
				fmt.Fprintf(a.streams.Out, "%s\t%s\t%d bytes\n", e.Ref(), short(e.Digest), e.Size)
			}
			var carried, omitted int64
			for _, b := range m.Blobs {
				carried += b.Size
			}
			for _, b := range m.Omitted {
				omitted += b.Size
			}
			a.status("exported %d package(s) to %s: %d blob(s), %d bytes (%d blob(s), %d bytes, left out: the receiving hub holds them)", len(m.Packages), out, len(m.Blobs), carried, len(m.Omitted), omitted)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only packages approved at or after this RFC 3339 time, or this long ago (168h, 7d)")
	cmd.Flags().StringVar(&out, "output-file", "", "the export file to write")
	cmd.Flags().StringVar(&against, "against", "", "the receiving hub's inventory (skiff hub inventory): leave out the blobs it holds")
	migrateOutput(cmd, "--output-file")
	f.add(cmd)
	return cmd
}

func newHubImport(a *app) *cobra.Command {
	var f hubFlags
	return f.hubCmd(&cobra.Command{
		Use:   "import HUB EXPORT.tar",
		Short: "Publish the packages of an export through this hub's gates (site administrator)",
		Long: `Import streams an export (skiff hub export) to the hub. The hub checks
the whole export first (every blob's sha256, every package's graph; the
blobs an export --against left out must be on this hub) and stores
nothing if anything is wrong; then each package goes through the same
pipeline as a push: quarantine, structure and signature gates (this
hub's trust directory), the vulnerability gate, and this hub's approvals
(approvals never travel; you are recorded as the uploader, so another
administrator approves). Importing the same export again changes nothing.`,
		Args: cobra.ExactArgs(2),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		res, err := c.Import(ctx, args[0])
		if err != nil {
			return err
		}
		failed := 0
		for _, p := range res.Packages {
			if p.Error != "" {
				failed++
				fmt.Fprintf(a.streams.Out, "%s: %s: %s\n", p.Package, p.Status, p.Error)
				continue
			}
			fmt.Fprintf(a.streams.Out, "%s: %s\n", p.Package, p.Status)
			for _, g := range p.Gates {
				if !g.Passed {
					failed++
					fmt.Fprintf(a.streams.Out, "  gate %s: FAILED: %s\n", g.Name, strings.ReplaceAll(g.Message, "\n", "\n    "))
				}
			}
		}
		if failed > 0 {
			return &ExitError{Code: 1, Err: fmt.Errorf("%d problem(s) importing %d package(s): see above", failed, len(res.Packages))}
		}
		a.status("imported %d package(s); approve them with `skiff hub approve`", len(res.Packages))
		return nil
	})
}
