package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/split"
)

func init() { register(newJoin) }

func newJoin(a *app) *cobra.Command {
	var o split.JoinOptions
	cmd := &cobra.Command{
		Use:   "join ARCHIVE.parts.json [--output-file OUT]",
		Short: "Join the parts of a split archive, rebuilding damaged parts",
		Long: `Join checks every part named in the manifest written by skiff split,
rebuilds missing or corrupt parts from the parity parts (as many as there
are parity parts), writes the archive atomically and checks its sha256.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := split.Join(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if len(res.Damaged) > 0 {
				a.status("damaged parts: %s (rebuilt from parity)", strings.Join(res.Damaged, ", "))
			}
			fmt.Fprintf(a.streams.Out, "%s: %s, sha256 %s ok\n", res.Path, bytesize.Format(res.Bytes), res.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Output, "output-file", "", "archive to write (default: the original name beside the manifest)")
	migrateOutput(cmd, "--output-file")
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite the output if it exists")
	return cmd
}
