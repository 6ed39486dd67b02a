package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/inventory"
)

func init() { register(newInventory) }

func newInventory(a *app) *cobra.Command {
	var (
		registry, archive, out string
		rf                     remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "inventory (--registry HOST[/PREFIX] | --archive OLD.skiff) --output-file inv.json",
		Short: "List the blobs the air-gapped side holds, for a delta build",
		Long: `Inventory writes a small JSON file listing every blob (digest and size) held
by a registry on the air-gapped side, or carried by an archive that was
loaded there. Carry it to the connected side and pass it to
skiff build --delta-from: the new archive then leaves those blobs out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				inv *inventory.Inventory
				err error
			)
			switch {
			case (registry == "") == (archive == ""):
				return errors.New("pass exactly one of --registry HOST[/PREFIX] and --archive OLD.skiff")
			case registry != "":
				ro, err := rf.options()
				if err != nil {
					return err
				}
				inv, err = inventory.FromRegistry(cmd.Context(), registry, ro)
				if err != nil {
					return err
				}
			default:
				if inv, err = inventory.FromArchive(cmd.Context(), archive); err != nil {
					return err
				}
			}
			if err := inventory.Write(out, inv); err != nil {
				return err
			}
			d, err := inv.Digest()
			if err != nil {
				return err
			}
			n, size := inv.Size()
			fmt.Fprintf(a.streams.Out, "%s: %d blobs (%s) of %s, inventory %s\n", out, n, bytesize.Format(size), inv.Source, d)
			return nil
		},
	}
	cmd.Flags().StringVar(&registry, "registry", "", "registry to take the inventory of: [https://|http://]HOST[:PORT][/PREFIX]")
	cmd.Flags().StringVar(&archive, "archive", "", "archive carried across before")
	cmd.Flags().StringVar(&out, "output-file", "", "inventory file to write (required)")
	migrateOutput(cmd, "--output-file")
	_ = cmd.MarkFlagRequired("output-file")
	rf.add(cmd)
	return cmd
}
