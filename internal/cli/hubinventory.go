package cli

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { registerHub(newHubInventory) }

func newHubInventory(a *app) *cobra.Command {
	var (
		f   hubFlags
		out string
	)
	cmd := f.hubCmd(&cobra.Command{
		Use:   "inventory HUB [--output-file inventory.json]",
		Short: "List the blobs this hub holds, for an export against it (site administrator)",
		Long: `Inventory prints (or writes to --output-file) the digests of every blob
the hub holds for its pending, approved and blocked packages, as JSON.
Carry it to the exporting hub: ` + "`skiff hub export --against inventory.json`" + `
leaves those blobs out, so only what this hub lacks travels.`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		inv, err := c.Inventory(ctx)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(inv, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if out == "" {
			_, err = a.streams.Out.Write(b)
			return err
		}
		if err := atomicfile.WriteFile(out, b, 0o600); err != nil {
			return err
		}
		a.status("wrote the inventory of %d blob(s) to %s", len(inv.Blobs), out)
		return nil
	})
	cmd.Flags().StringVar(&out, "output-file", "", "write the inventory to this file instead of standard output")
	return cmd
}
