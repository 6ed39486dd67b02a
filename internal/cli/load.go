package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/oci"
)

func init() { register(newLoad) }

// loadResult is what load reports (-o json|yaml).
type loadResult struct {
	Registry string `json:"registry"`
	// Images maps each source reference to where it was loaded, by digest.
	Images map[string]string   `json:"images"`
	Push   *oci.PushResult     `json:"push"`
	Charts []install.ChartPush `json:"charts,omitempty"`
}

func newLoad(a *app) *cobra.Command {
	var (
		o          install.LoadOptions
		rf         remoteFlags
		tf         trustFlags
		skipCharts bool
		out        *formatFlag
	)
	cmd := &cobra.Command{
		Use:   "load ARCHIVE --registry HOST[/PREFIX]",
		Short: "Push a package's images into an OCI registry",
		Long: `Load pushes every image straight out of the archive (nothing is extracted)
into the target registry, under the given path prefix. Blobs the registry
already has are skipped, layers shared between repositories are mounted,
and digests are preserved, so a second load moves no layer bytes.

Every chart of the package is pushed too, as an OCI Helm chart at
HOST/PREFIX/charts/CHART:VERSION ("+" in the version written "_"), whose
default values are the package's values with each image value pointing at
the loaded image: helm install oci://HOST/PREFIX/charts/CHART, a Flux
HelmRelease or an Argo CD Application then work offline. --skip-charts
leaves them out.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			stopProfiling, err := startProfiling()
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, stopProfiling()) }()
			if o.Remote, err = rf.options(); err != nil {
				return err
			}
			p, err := tf.open(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			bp := a.newBlobProgress("push")
			o.Progress = bp.event
			o.Charts = !skipCharts
			res, err := install.Load(cmd.Context(), p, o)
			bp.done()
			if err != nil {
				return err
			}
			lr := loadResult{Registry: o.Registry, Images: res.Map, Push: res.Push, Charts: res.Charts}
			return a.print(out, lr, func() error {
				r := res.Push
				fmt.Fprintf(a.streams.Out, "loaded %d images into %s: %s pushed (%d blobs), %s skipped (%d blobs), %d blobs mounted\n",
					len(res.Map), o.Registry, bytesize.Format(r.BytesPushed), r.BlobsPushed, bytesize.Format(r.BytesSkipped), r.BlobsSkipped, r.BlobsMounted)
				for _, c := range res.Charts {
					fmt.Fprintf(a.streams.Out, "chart %s %s: %s (%d image values relocated)\n", c.Chart, c.Version, c.Ref, c.Images)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&o.Registry, "registry", "", "target registry [https://|http://]HOST[:PORT][/PREFIX] (required; https:// means TLS even on 127.0.0.1)")
	cmd.Flags().BoolVar(&o.Flatten, "flatten", false, "keep only the last path element of each repository (refused when two images would collide)")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", 4, "images pushed in parallel")
	cmd.Flags().BoolVar(&skipCharts, "skip-charts", false, "do not push the package's charts as OCI Helm charts")
	_ = cmd.MarkFlagRequired("registry")
	out = addFormat(cmd, "")
	rf.add(cmd)
	tf.add(cmd)
	return cmd
}
