package cli

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newInstall); register(newUpgrade) }

func newInstall(a *app) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "install ARCHIVE --registry HOST[/PREFIX]",
		Short: "Install a package into the cluster",
		Long: `Install verifies the archive's signature, loads its images into the
registry, rewrites every image reference to that registry pinned by digest,
installs charts (Helm, server-side apply) and manifests (server-side apply),
waits until everything is ready and records revision 1 in the cluster.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, o, err := f.open(a, cmd, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			var done func()
			o.Progress, done = a.deployProgress()
			res, err := install.Install(cmd.Context(), p, o)
			done()
			if err != nil || o.DryRun {
				return err
			}
			r := res.Record
			fmt.Fprintf(a.streams.Out, "installed %s (%s %s) in namespace %s: revision %d, %s\n", r.Deployment, r.Package.Name, r.Package.Version, r.Namespace, r.Revision, r.Status)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newUpgrade(a *app) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "upgrade ARCHIVE --registry HOST[/PREFIX]",
		Short: "Upgrade a deployment to another package version",
		Long: `Upgrade applies a package over an existing deployment as a new revision:
charts are upgraded, manifests re-applied, objects the new version no
longer has are pruned, and components it dropped are removed. With
--atomic a failed upgrade rolls back to the deployed revision.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, o, err := f.open(a, cmd, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			var done func()
			o.Progress, done = a.deployProgress()
			res, err := install.Upgrade(cmd.Context(), p, o)
			done()
			if err != nil || o.DryRun {
				return err
			}
			r := res.Record
			fmt.Fprintf(a.streams.Out, "upgraded %s to %s %s: revision %d, %s\n", r.Deployment, r.Package.Name, r.Package.Version, r.Revision, r.Status)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
