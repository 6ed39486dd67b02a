package cli

import (
	"fmt"
	"io"

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
The command and Job lifecycle steps the operation would run are listed
after the changes (they do not count as changes).
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
			n := printChanges(a.streams.Out, changes)
			if n == 0 {
				return nil
			}
			return &ExitError{Code: exitChanges, Err: fmt.Errorf("%d objects would change", n)}
		},
	}
	f.add(cmd)
	return cmd
}

// printChanges writes what diff found: the object changes, then the
// lifecycle steps that would run; it returns the number of changes.
func printChanges(w io.Writer, changes []install.Change) int {
	n := 0
	var steps []install.Change
	for _, c := range changes {
		if c.IsStep() {
			steps = append(steps, c)
			continue
		}
		n++
		if c.Component == "" {
			fmt.Fprintf(w, "%s: %s\n", c.Op, c.Object)
			continue
		}
		fmt.Fprintf(w, "%s %s: %s\n", c.Op, c.Component, c.Object)
		if c.Diff != "" {
			fmt.Fprint(w, c.Diff)
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "no changes")
	}
	if len(steps) > 0 {
		fmt.Fprintf(w, "\nlifecycle steps that would run:\n")
		for _, c := range steps {
			fmt.Fprintf(w, "  %s %s: %s\n", c.Op, c.Component, c.Object)
		}
	}
	return n
}
