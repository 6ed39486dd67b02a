package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/release"
)

func init() { register(newInstall); register(newUpgrade) }

// deployResult is what install and upgrade report (-o json|yaml): the new
// revision's record and what the load moved.
type deployResult struct {
	Record *release.Record     `json:"record"`
	Push   *oci.PushResult     `json:"push,omitempty"`
	Charts []install.ChartPush `json:"charts,omitempty"`
}

// deployVerb is what differs between install and upgrade.
type deployVerb struct {
	use, short, long string
	run              func(context.Context, *install.Package, install.Options) (*install.Result, error)
	report           func(w io.Writer, r *release.Record)
	upgrade          bool // add the upgrade-only flags
}

func newInstall(a *app) *cobra.Command {
	return newDeploy(a, deployVerb{
		use:   "install ARCHIVE --registry HOST[/PREFIX]",
		short: "Install a package into the cluster",
		long: `Install verifies the archive's signature, loads its images into the
registry, rewrites every image reference to that registry pinned by digest,
installs charts (Helm, server-side apply) and manifests (server-side apply),
waits until everything is ready and records revision 1 in the cluster.`,
		run: install.Install,
		report: func(w io.Writer, r *release.Record) {
			fmt.Fprintf(w, "installed %s (%s %s) in namespace %s: revision %d, %s\n", r.Deployment, r.Package.Name, r.Package.Version, r.Namespace, r.Revision, r.Status)
		},
	})
}

func newUpgrade(a *app) *cobra.Command {
	return newDeploy(a, deployVerb{
		use:   "upgrade ARCHIVE --registry HOST[/PREFIX]",
		short: "Upgrade a deployment to another package version",
		long: `Upgrade applies a package over an existing deployment as a new revision:
charts are upgraded, manifests re-applied, objects the new version no
longer has are pruned, and components it dropped are removed. With
--atomic a failed upgrade rolls back to the deployed revision. An older
package version than the deployed one is refused unless --allow-downgrade.
With --install a deployment that does not exist is installed.`,
		run:     install.Upgrade,
		upgrade: true,
		report: func(w io.Writer, r *release.Record) {
			if r.Revision == 1 { // upgrade --install of a missing deployment
				fmt.Fprintf(w, "installed %s (%s %s) in namespace %s: revision %d, %s\n", r.Deployment, r.Package.Name, r.Package.Version, r.Namespace, r.Revision, r.Status)
				return
			}
			fmt.Fprintf(w, "upgraded %s to %s %s: revision %d, %s\n", r.Deployment, r.Package.Name, r.Package.Version, r.Revision, r.Status)
		},
	})
}

// maxObjectsShown bounds the objects named per component in a report.
const maxObjectsShown = 8

// reportComponents names what a revision holds: the Helm release of each
// chart and the objects of each manifest set.
func reportComponents(w io.Writer, r *release.Record) {
	for _, c := range r.Components {
		if c.Deferred {
			continue
		}
		ns := c.Namespace
		if ns == "" {
			ns = r.Namespace
		}
		if c.HelmRelease != "" {
			fmt.Fprintf(w, "  chart %s: Helm release %s (revision %d) in namespace %s\n", c.Name, c.HelmRelease, c.HelmRevision, ns)
			continue
		}
		names := make([]string, 0, min(len(c.Objects), maxObjectsShown))
		for i, o := range c.Objects {
			if i == maxObjectsShown {
				names = append(names, fmt.Sprintf("and %d more", len(c.Objects)-maxObjectsShown))
				break
			}
			n := o.Kind + "/" + o.Name
			if o.Namespace != "" && o.Namespace != ns {
				n = o.Kind + "/" + o.Namespace + "/" + o.Name
			}
			names = append(names, n)
		}
		fmt.Fprintf(w, "  %s %s: %d objects in namespace %s: %s\n", c.Kind, c.Name, len(c.Objects), ns, strings.Join(names, ", "))
	}
}

// newDeploy builds the install or upgrade command: open and verify the
// archive, run v.run with the deploy flags, report the new revision.
func newDeploy(a *app, v deployVerb) *cobra.Command {
	var (
		f   deployFlags
		out *formatFlag
	)
	cmd := &cobra.Command{
		Use:   v.use,
		Short: v.short,
		Long:  v.long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			stopProfiling, err := startProfiling()
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, stopProfiling()) }()
			p, o, err := f.open(a, cmd, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			var done func()
			o.Progress, done = a.deployProgress()
			res, err := v.run(cmd.Context(), p, o)
			done()
			if err != nil || o.DryRun {
				return err
			}
			r := deployResult{Record: res.Record}
			if res.Load != nil {
				r.Push, r.Charts = res.Load.Push, res.Load.Charts
			}
			return a.print(out, r, func() error {
				v.report(a.streams.Out, res.Record)
				reportComponents(a.streams.Out, res.Record)
				return nil
			})
		},
	}
	out = addFormat(cmd, "")
	f.add(cmd)
	f.addCommands(cmd)
	if v.upgrade {
		f.addUpgrade(cmd)
	}
	return cmd
}
