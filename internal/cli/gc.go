package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/gc"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/registry"
	"github.com/skiffhq/skiff/internal/release"
)

// newRegistryGC is `skiff registry gc`, added to the registry command.
func newRegistryGC(a *app) *cobra.Command {
	var (
		o       gc.Options
		rf      remoteFlags
		kconfig kube.Config
		output  string
	)
	cmd := &cobra.Command{
		Use:   "gc --registry HOST[/PREFIX] | gc --root DIR",
		Short: "Delete the images no retained release revision needs",
		Long: `GC deletes from the registry every image under PREFIX that no retained
release revision of the cluster refers to (with its tags). Deployed
revisions and revisions with an operation in progress are always retained;
--keep-history N retains only the newest N revisions of each deployment
besides them (default: every stored revision).

Deleting manifests frees no disk by itself. For Skiff's embedded registry,
pass its storage directory with --root to also sweep the blobs nothing
refers to any more. The sweep refuses to run while the registry serves
that directory (its cache would still claim the swept blobs): delete the
manifests with --registry while it runs, stop it, then sweep with --root
alone. A Skiff hub's directory (hub.db or audit-head.json) is refused as
well: while a hub serves it, and, stopped, unless --allow-hub-root. For
another registry run its own garbage collector afterwards (registry
garbage-collect for distribution).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			remote, err := rf.options()
			if err != nil {
				return err
			}
			o.Remote = remote
			if o.Registry == "" {
				if o.Root == "" {
					return fmt.Errorf("pass --registry HOST[:PORT][/PREFIX] (delete unused images), --root DIR (sweep the embedded registry's unreferenced blobs), or both")
				}
				// Sweep only: the embedded registry must be stopped.
				if o.DryRun {
					return fmt.Errorf("--dry-run needs --registry: a sweep alone has nothing to list")
				}
				b, err := registry.GC(cmd.Context(), o.Root, registry.GCOptions{AllowHubRoot: o.AllowHubRoot})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "blob sweep: %d blobs (%d bytes) freed, %d blobs (%d bytes) remain\n",
					b.BlobsBefore-b.BlobsAfter, b.BytesBefore-b.BytesAfter, b.BlobsAfter, b.BytesAfter)
				return nil
			}
			kc, err := kube.New(kconfig)
			if err != nil {
				return err
			}
			o.Records = release.NewSecrets(kc)
			res, err := gc.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(a.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			addr, err := endpoint.Parse(o.Registry)
			if err != nil {
				return err
			}
			host := addr.Host
			verb := "deleted"
			if o.DryRun {
				verb = "would delete"
			}
			for _, m := range res.Deleted {
				tags := ""
				if len(m.Tags) > 0 {
					tags = " (" + strings.Join(m.Tags, ", ") + ")"
				}
				fmt.Fprintf(a.streams.Out, "%s %s%s\n", verb, m.Ref(host), tags)
			}
			fmt.Fprintf(a.streams.Out, "%d revisions retained referring to %d images; kept %d manifests, %s %d\n",
				res.Revisions, res.Images, len(res.Kept), verb, len(res.Deleted))
			if b := res.Blobs; b != nil {
				fmt.Fprintf(a.streams.Out, "blob sweep: %d blobs (%d bytes) freed, %d blobs (%d bytes) remain\n",
					b.BlobsBefore-b.BlobsAfter, b.BytesBefore-b.BytesAfter, b.BlobsAfter, b.BytesAfter)
			} else if o.Root == "" && !o.DryRun && len(res.Deleted) > 0 {
				a.status("skiff: note: deleting manifests frees no disk by itself: pass --root for the embedded registry, or run the registry's own garbage collector")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Registry, "registry", "", "registry [https://|http://]HOST[:PORT][/PREFIX] the images were loaded into")
	fl.StringVar(&o.Root, "root", "", "storage directory of the embedded registry, which must be stopped: also delete unreferenced blobs (alone: only that)")
	fl.BoolVar(&o.AllowHubRoot, "allow-hub-root", false, "sweep --root even though it is a stopped Skiff hub's directory (refused otherwise: the hub's database records content the sweep does not read)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "list what would be deleted; delete nothing")
	fl.IntVar(&o.KeepHistory, "keep-history", 0, "retain the newest N revisions of each deployment besides deployed ones (0: all stored)")
	fl.StringVar(&kconfig.Kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster whose releases to keep (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&kconfig.Context, "context", "", "kubeconfig context")
	fl.StringVarP(&output, "output", "o", "text", "text or json")
	rf.add(cmd)
	return cmd
}
