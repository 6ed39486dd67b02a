package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/support"
)

func init() { register(newSupportBundle) }

func newSupportBundle(a *app) *cobra.Command {
	var (
		cf     clusterFlags
		output string
		tail   int64
	)
	cmd := &cobra.Command{
		Use:   "support-bundle DEPLOYMENT",
		Short: "Collect a deployment's records, events, status and logs into one tar.gz",
		Long: `Support-bundle collects what is needed to debug a deployment into one
tar.gz to carry out of the air gap: its release records (values and
Secret data redacted, as is every value under a key named like a password,
token, secret or key), the events of its namespaces, the readiness of its
objects, its pods' status and the last --tail lines of their logs. What
cannot be collected is listed in summary.json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				output = args[0] + "-support.tar.gz"
			}
			res, err := support.Collect(cmd.Context(), support.Options{
				Cluster: cf.cluster(), Namespace: cf.namespace, Deployment: args[0], Output: output, TailLines: tail,
			})
			if err != nil {
				return err
			}
			for _, e := range res.Errors {
				a.status("skiff: note: not collected: %s", e)
			}
			fmt.Fprintf(a.streams.Out, "wrote %s (%d files)\n", res.Path, len(res.Files))
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVar(&output, "output-file", "", "bundle file to write (default DEPLOYMENT-support.tar.gz)")
	migrateOutput(cmd, "--output-file")
	cmd.Flags().Int64Var(&tail, "tail", support.DefaultTailLines, "log lines kept per container (-1: all)")
	return cmd
}
