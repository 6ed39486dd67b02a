package cli

import (
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/artifact"
	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newPull) }

func newPull(a *app) *cobra.Command {
	var (
		f   hubFlags
		rf  remoteFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "pull HUB/OWNER/NAME:VERSION | oci://REGISTRY/REPOSITORY:TAG [--output-file FILE]",
		Short: "Download a package from a Skiff hub or an OCI registry as an archive",
		Long: `Pull rebuilds the package archive from the hub: the result is byte for
byte the archive that was pushed, so its signatures verify as before.
Only approved packages can be pulled. Blobs are staged in the user cache
directory (skiff/pull) under a name derived from FILE; an interrupted pull
of the same FILE resumes, fetching only the blobs it lacks.

oci://REGISTRY/REPOSITORY:TAG (or @DIGEST) pulls a package that skiff push
put into a plain OCI registry, with every signature the registry lists as
a referrer of it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if artifact.IsRef(args[0]) {
				return pullOCI(a, cmd, args[0], out, &rf)
			}
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
	cmd.Flags().StringVar(&out, "output-file", "", "archive to write (default NAME-VERSION.skiff)")
	migrateOutput(cmd, "--output-file")
	f.add(cmd)
	rf.add(cmd)
	return cmd
}

// pullOCI pulls a package from a plain OCI registry.
func pullOCI(a *app, cmd *cobra.Command, from, out string, rf *remoteFlags) error {
	ref, err := artifact.ParseRef(from)
	if err != nil {
		return err
	}
	remote, err := rf.options()
	if err != nil {
		return err
	}
	if out == "" {
		name := path.Base(ref.Repo)
		if ref.Tag != "" && !strings.Contains(ref.Tag, ":") {
			name += "-" + ref.Tag
		}
		out = name + ".skiff"
	}
	bp := a.newBlobProgress("pulling")
	res, err := artifact.Pull(cmd.Context(), ref, out, artifact.PullOptions{Remote: remote, Transfer: bp.event})
	bp.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.streams.Out, "%s: %s, %d blobs, %s, %d signature(s)\n", out, res.Reference, res.Write.Blobs, bytesize.Format(res.Write.Bytes), res.Signatures)
	return nil
}
