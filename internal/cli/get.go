package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newGet) }

func newGet(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show what a deployment was given",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newGetValues(a))
	return cmd
}

func newGetValues(a *app) *cobra.Command {
	var cf clusterFlags
	var rev int
	var showSecrets bool
	var output string
	cmd := &cobra.Command{
		Use:   "values DEPLOYMENT",
		Short: "Show the values a revision was given, keyed by chart (a -f file)",
		Long: `Get values prints the user values a revision of a deployment was given
(not the package's defaults), keyed by chart name: the shape of a -f file.
Values of encrypted files and of --set are shown as <redacted> unless
--show-secrets is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, vals, err := install.GetValues(cmd.Context(), cf.cluster(), cf.namespace, args[0], install.ValuesOptions{Revision: rev, ShowSecrets: showSecrets})
			if err != nil {
				return err
			}
			switch output {
			case "json":
				return json.NewEncoder(a.streams.Out).Encode(vals)
			case "yaml":
				b, err := yaml.Marshal(vals)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "# %s revision %d (%s %s)\n", rec.Deployment, rec.Revision, rec.Package.Name, rec.Package.Version)
				_, err = a.streams.Out.Write(b)
				return err
			}
			return fmt.Errorf("-o %q: use yaml or json", output)
		},
	}
	cf.add(cmd)
	cmd.Flags().IntVar(&rev, "revision", 0, "revision to show (default: the latest)")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "show the values of encrypted files and --set instead of <redacted>")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	return cmd
}
