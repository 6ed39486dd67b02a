package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/artifact"
	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newPush) }

func newPush(a *app) *cobra.Command {
	var (
		f  hubFlags
		rf remoteFlags
		o  hubclient.PushOptions
	)
	cmd := &cobra.Command{
		Use:   "push ARCHIVE HUB/OWNER | oci://REGISTRY/REPOSITORY[:TAG]",
		Short: "Publish a package archive to a Skiff hub or any OCI registry",
		Long: `Push uploads the archive's images, metadata and signatures into the hub's
repository OWNER/NAME, tagged with the version, then submits it: the hub
quarantines it, runs its gates (structure, signature, vulnerabilities)
and answers pending (awaiting approval) or rejected. Readers can pull it
once enough administrators of OWNER approved it.

With oci://REGISTRY/REPOSITORY[:TAG] the archive goes to a plain OCI
registry (distribution, Harbor, zot, skiff registry serve) as an OCI
artifact: its root index tagged TAG (default: the package version, "+"
written "_"), each signature as a referrer of the root (or in the
referrers tag sha256-<hex> where the registry has no referrers API).
skiff pull, install and inspect take the same address; the archive
pulled back is byte for byte the one pushed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if artifact.IsRef(args[1]) {
				return pushOCI(a, cmd, args[0], args[1], &rf, o.Concurrency)
			}
			to, err := endpoint.Parse(args[1])
			owner := to.Path
			if err != nil || owner == "" || strings.Contains(owner, "/") {
				return fmt.Errorf("push target %q: write HUB/OWNER, e.g. hub.example:8443/acme or https://127.0.0.1:8443/acme", args[1])
			}
			to.Path = ""
			c, err := f.mustLogin(to.String())
			if err != nil {
				return err
			}
			bp := a.newBlobProgress("push")
			o.Progress = bp.event
			res, err := c.Push(cmd.Context(), args[0], owner, o)
			bp.done()
			if err != nil {
				return err
			}
			r := res.Push
			fmt.Fprintf(a.streams.Out, "pushed %s: %s uploaded (%d blobs), %s skipped\n", res.Ref, bytesize.Format(r.BytesPushed), r.BlobsPushed, bytesize.Format(r.BytesSkipped))
			if res.Package == nil {
				fmt.Fprintln(a.streams.Out, "status: quarantined (not submitted)")
				return nil
			}
			printReview(a, res.Package)
			if res.Package.Status == "rejected" {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s was rejected by its gates", res.Ref)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.NoSubmit, "no-submit", false, "leave the package quarantined; do not run the gates yet")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", 4, "parallel uploads")
	f.add(cmd)
	rf.add(cmd)
	return cmd
}

// pushOCI pushes the archive to a plain OCI registry.
func pushOCI(a *app, cmd *cobra.Command, archive, to string, rf *remoteFlags, conc int) error {
	ref, err := artifact.ParseRef(to)
	if err != nil {
		return err
	}
	remote, err := rf.options()
	if err != nil {
		return err
	}
	bp := a.newBlobProgress("push")
	res, err := artifact.Push(cmd.Context(), archive, ref, artifact.PushOptions{Remote: remote, Concurrency: conc, Progress: bp.event})
	bp.done()
	if err != nil {
		return err
	}
	r := res.Push
	fmt.Fprintf(a.streams.Out, "pushed %s (%s %s, root %s, %d signature(s)): %s uploaded (%d blobs), %s skipped\n",
		res.Reference, res.Name, res.Version, res.Root, res.Signatures, bytesize.Format(r.BytesPushed), r.BlobsPushed, bytesize.Format(r.BytesSkipped))
	return nil
}
