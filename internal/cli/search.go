package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newSearch) }

func newSearch(a *app) *cobra.Command {
	var (
		f      hubFlags
		o      hubclient.SearchOptions
		output string
	)
	cmd := f.hubCmd(&cobra.Command{
		Use:   "search HUB [QUERY]",
		Short: "Search a Skiff hub's packages",
		Long: `Search lists the packages you may read whose OWNER/NAME or description
contains QUERY: approved ones by default; --status all (or pending,
rejected, ...) shows the review queue of owners you can write to.`,
		Args: cobra.RangeArgs(1, 2),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		if len(args) == 1 {
			o.Query = args[0]
		}
		ps, err := c.Search(ctx, o)
		if err != nil {
			return err
		}
		if output == "json" {
			enc := json.NewEncoder(a.streams.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(ps)
		}
		if len(ps) == 0 {
			fmt.Fprintln(a.streams.Out, "no packages found")
			return nil
		}
		w := a.table()
		fmt.Fprintln(w, "PACKAGE\tVERSION\tSTATUS\tUPLOADER\tDIGEST")
		for _, p := range ps {
			fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", p.Owner, p.Name, p.Version, p.Status, p.Uploader, short(p.Digest))
		}
		return w.Flush()
	})
	cmd.Flags().StringVar(&o.Status, "status", "", "package state: approved (default), pending, quarantined, rejected, removed or all")
	cmd.Flags().StringVar(&o.Owner, "owner", "", "only this owner's packages")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
