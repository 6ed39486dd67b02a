package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/secret"
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
	var identities []string
	var output string
	cmd := &cobra.Command{
		Use:   "values DEPLOYMENT",
		Short: "Show the values a revision was given, keyed by chart (a -f file)",
		Long: `Get values prints the user values a revision of a deployment was given
(not the package's defaults), keyed by chart name: the shape of a -f file.
Values of encrypted files are shown as <redacted> unless --identity (or
$SKIFF_PASSPHRASE) decrypts the encrypted files the revision keeps; values
given with --set stay <redacted> unless --show-secrets.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vo := install.ValuesOptions{Revision: rev, ShowSecrets: showSecrets}
			if len(identities) > 0 || os.Getenv("SKIFF_PASSPHRASE") != "" {
				vo.Decrypt = func(name string, sealed []byte) ([]byte, error) {
					return secret.Decrypt(bytes.NewReader(sealed), secret.DecryptOptions{
						IdentityFiles: identities,
						Passphrase:    func() ([]byte, error) { return passphrase(a, "passphrase for "+name, false) },
					})
				}
			}
			rec, vals, err := install.GetValues(cmd.Context(), cf.cluster(), cf.namespace, args[0], vo)
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
	cmd.Flags().StringArrayVar(&identities, "identity", nil, "age identity file that decrypts the revision's encrypted values files (or $SKIFF_PASSPHRASE)")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "show every value as given, --set values included")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	return cmd
}
