package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newDiff) }

func newDiff(a *app) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "diff ARCHIVE",
		Short: "Show what an upgrade to ARCHIVE would change in the cluster",
		Long: `Diff renders the package with the given values and relocated images,
server-side applies every object in a dry run and compares the result with
the live object: drift and objects deleted out of band show, as do objects
the deployment has and the package lacks. Nothing is pushed or applied.
An existing deployment needs no --registry (the recorded one is used).
Exit code 2 means there are changes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, o, err := f.open(a, cmd, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			changes, err := install.Diff(cmd.Context(), p, o)
			if err != nil {
				return err
			}
			for _, c := range changes {
				if c.Component == "" {
					fmt.Fprintf(a.streams.Out, "%s: %s\n", c.Op, c.Object)
					continue
				}
				fmt.Fprintf(a.streams.Out, "%s %s: %s\n", c.Op, c.Component, c.Object)
				if c.Diff != "" {
					fmt.Fprint(a.streams.Out, c.Diff)
				}
			}
			if len(changes) == 0 {
				fmt.Fprintln(a.streams.Out, "no changes")
				return nil
			}
			return &ExitError{Code: exitChanges, Err: fmt.Errorf("%d objects would change", len(changes))}
		},
	}
	f.add(cmd)
	return cmd
}
