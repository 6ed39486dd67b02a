package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/convert"
)

func init() { register(newConvert) }

func newConvert(a *app) *cobra.Command {
	var (
		out   string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "convert package.kosi|package.yaml [--output-file skiff.yaml]",
		Short: "Convert a KOSI package definition into skiff.yaml",
		Long: `Convert reads a KOSI package definition (package.kosi, or the older
package.yaml) and writes the equivalent skiff.yaml. What has no declarative
meaning in Skiff (shell steps, arbitrary plugin calls) is listed on stderr,
one line each, and as comments at the top of the spec, for a person to
finish the port.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			y, report, err := convert.Convert(in, filepath.Base(args[0]))
			if err != nil {
				return err
			}
			if !force {
				if _, err := os.Lstat(out); err == nil {
					return fmt.Errorf("%s already exists: pass --force to overwrite it, or --output-file elsewhere", out)
				}
			}
			if err := atomicfile.WriteFile(out, y, 0o644); err != nil {
				return err
			}
			for _, line := range report {
				a.status("convert: %s", line)
			}
			fmt.Fprintf(a.streams.Out, "wrote %s (%d notes to review)\n", out, len(report))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "output-file", "skiff.yaml", "spec to write")
	migrateOutput(cmd, "--output-file")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the output if it exists")
	return cmd
}
