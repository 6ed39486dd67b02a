package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/build"
)

func init() { register(newLint) }

func newLint(a *app) *cobra.Command {
	var f fetchFlags
	var specPath string
	var sets []string
	var kubeVersion string
	cmd := &cobra.Command{
		Use:   "lint [DIR]",
		Short: "Validate skiff.yaml and dry-render its charts and manifests",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				specPath = args[0]
			}
			p, err := build.NewPlan(cmd.Context(), build.PlanOptions{Spec: specPath, Set: sets, KubeVersion: kubeVersion, Chart: f.chart()})
			if err != nil {
				return err
			}
			w := a.streams.Out
			fmt.Fprintf(w, "%s %s: ok\n", p.Spec.Metadata.Name, p.Spec.Metadata.Version)
			for _, c := range p.Charts {
				fmt.Fprintf(w, "  chart %s (%s %s): %d images\n", c.Name, c.Archive.Name, c.Archive.Version, len(c.Images))
			}
			for _, m := range p.Manifests {
				fmt.Fprintf(w, "  manifests %s: %d images\n", m.Name, len(m.Images))
			}
			fmt.Fprintf(w, "  images (%d):\n", len(p.Images))
			for _, im := range p.Images {
				fmt.Fprintf(w, "    %s\n", im)
			}
			if len(p.Unreferenced) > 0 {
				fmt.Fprintf(w, "hint: %d carried images are neither found in manifests nor mapped to a chart value: if a chart passes them as flags, map the value with imageValues; otherwise nodes reach them only through a mirror or the admission agent (docs/images-on-nodes.md):\n", len(p.Unreferenced))
				for _, im := range p.Unreferenced {
					fmt.Fprintf(w, "    %s\n", im)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&specPath, "file", "f", "", "path to skiff.yaml or its directory (default .)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a chart value: CHART.key=value (repeatable)")
	cmd.Flags().StringVar(&kubeVersion, "kube-version", "", "Kubernetes version to render the charts for, like 1.35 (default: the spec's kubeVersion, else Helm's default)")
	f.add(cmd)
	return cmd
}
