package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newPull) }

func newPull(a *app) *cobra.Command {
	var (
		f   hubFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "pull HUB/OWNER/NAME:VERSION [-o FILE]",
		Short: "Download an approved package from a Skiff hub as an archive",
		Long: `Pull rebuilds the package archive from the hub: the result is byte for
byte the archive that was pushed, so its signatures verify as before.
Only approved packages can be pulled. Blobs are staged in the user cache
directory (skiff/pull) under a name derived from FILE; an interrupted pull
of the same FILE resumes, fetching only the blobs it lacks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := hubclient.ParseRef(args[0])
			if err != nil {
				return err
			}
			c, err := f.client(ref.Hub)
			if err != nil {
				return err
			}
			if out == "" {
				out = ref.Name + "-" + ref.Version + ".skiff"
			}
			bp := a.newBlobProgress("pulling")
			res, err := c.Pull(cmd.Context(), ref.Owner, ref.Name, ref.Version, out, hubclient.PullOptions{Transfer: bp.event})
			bp.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: %s %s, %d blobs, %s, %d signature(s)\n", out, ref.Name, ref.Version, res.Write.Blobs, bytesize.Format(res.Write.Bytes), len(res.Package.Signatures))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "archive to write (default NAME-VERSION.skiff)")
	f.add(cmd)
	return cmd
}
