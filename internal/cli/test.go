package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newTest) }

func newTest(a *app) *cobra.Command {
	var cf clusterFlags
	var timeout time.Duration
	var logs bool
	cmd := &cobra.Command{
		Use:   "test DEPLOYMENT",
		Short: "Run the test hooks of a deployment's charts",
		Long: `Test runs the test hooks (helm.sh/hook: test) of every chart of the
deployed revision, as helm test does; their images were relocated with the
rest at install. Exit code 1 when a test fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var lw io.Writer
			if logs {
				lw = a.streams.Out
			}
			progress, done := a.deployProgress()
			res, err := install.Test(cmd.Context(), cf.cluster(), cf.namespace, args[0], install.TestOptions{Timeout: timeout, Logs: lw, Progress: progress})
			done()
			w := a.table()
			fmt.Fprintln(w, "COMPONENT\tTEST\tPHASE")
			for _, r := range res {
				if len(r.Hooks) == 0 && r.Err == nil {
					fmt.Fprintf(w, "%s\t(no tests)\t\n", r.Component)
				}
				for _, h := range r.Hooks {
					fmt.Fprintf(w, "%s\t%s/%s\t%s\n", r.Component, h.Kind, h.Name, h.Phase)
				}
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	cf.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "timeout of each test hook")
	cmd.Flags().BoolVar(&logs, "logs", false, "print the logs of the test pods")
	return cmd
}
