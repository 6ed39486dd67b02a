package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/release"
)

func init() {
	register(newRollback)
	register(newUninstall)
	register(newList)
	register(newHistory)
	register(newStatus)
}

func newRollback(a *app) *cobra.Command {
	var cf clusterFlags
	var timeout time.Duration
	var noWait bool
	var out *formatFlag
	cmd := &cobra.Command{
		Use:   "rollback DEPLOYMENT [REVISION]",
		Short: "Return a deployment to an earlier revision (default: the previous one)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev := 0
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return fmt.Errorf("revision %q: give a revision number from `skiff history %s`", args[1], args[0])
				}
				rev = n
			}
			progress, done := a.deployProgress()
			r, err := install.Rollback(cmd.Context(), cf.namespace, args[0], install.RollbackOptions{Cluster: cf.cluster(), Revision: rev, Timeout: timeout, NoWait: noWait, Progress: progress, Logger: a.log})
			done()
			if err != nil {
				return err
			}
			return a.print(out, r, func() error {
				_, err := fmt.Fprintf(a.streams.Out, "rolled back %s: revision %d (%s %s), %s\n", r.Deployment, r.Revision, r.Package.Name, r.Package.Version, r.Description)
				return err
			})
		},
	}
	out = addFormat(cmd, "")
	cf.add(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "readiness timeout per component")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "do not wait for readiness")
	return cmd
}

func newUninstall(a *app) *cobra.Command {
	var cf clusterFlags
	var keep, force, deleteCRDs, allowCmds bool
	var timeout time.Duration
	var out *formatFlag
	cmd := &cobra.Command{
		Use:   "uninstall DEPLOYMENT",
		Short: "Remove everything a deployment created",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			progress, done := a.deployProgress()
			err := install.Uninstall(cmd.Context(), cf.namespace, args[0], install.UninstallOptions{Cluster: cf.cluster(), KeepHistory: keep, Force: force, DeleteCRDs: deleteCRDs, Timeout: timeout, AllowCommands: allowCmds, Progress: progress, Logger: a.log})
			done()
			if err != nil {
				return err
			}
			r := struct {
				Deployment  string `json:"deployment"`
				Namespace   string `json:"namespace"`
				KeptHistory bool   `json:"keptHistory"`
			}{args[0], cf.namespace, keep}
			return a.print(out, r, func() error {
				_, err := fmt.Fprintf(a.streams.Out, "uninstalled %s from namespace %s\n", args[0], cf.namespace)
				return err
			})
		},
	}
	out = addFormat(cmd, "")
	cf.add(cmd)
	cmd.Flags().BoolVar(&keep, "keep-history", false, "keep the release records (marked uninstalled)")
	cmd.Flags().BoolVar(&force, "force", false, "uninstall even if other deployments depend on it")
	cmd.Flags().BoolVar(&deleteCRDs, "delete-crds", false, "also delete the CustomResourceDefinitions the deployment brought, and with them EVERY custom resource of their kinds in the cluster, whoever made it (without it CRDs are never deleted)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "deletion timeout")
	cmd.Flags().BoolVar(&allowCmds, "allow-commands", false, "let the deployment's preDelete steps run commands on this machine")
	return cmd
}

func newList(a *app) *cobra.Command {
	var cf clusterFlags
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := install.Records(cf.cluster())
			if err != nil {
				return err
			}
			ns := cf.namespace
			if all {
				ns = ""
			}
			recs, err := store.Deployments(cmd.Context(), ns)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(a.streams.Out).Encode(recs)
			}
			w := a.table()
			fmt.Fprintln(w, "NAME\tNAMESPACE\tREVISION\tSTATUS\tPACKAGE\tUPDATED")
			for _, r := range recs {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s %s\t%s\n", r.Deployment, r.Namespace, r.Revision, r.Status, r.Package.Name, r.Package.Version, r.Updated.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	cf.add(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list in every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newHistory(a *app) *cobra.Command {
	var cf clusterFlags
	var output string
	cmd := &cobra.Command{
		Use:   "history DEPLOYMENT",
		Short: "Show a deployment's revisions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := install.Records(cf.cluster())
			if err != nil {
				return err
			}
			hist, err := store.History(cmd.Context(), cf.namespace, args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(a.streams.Out).Encode(hist)
			}
			w := a.table()
			fmt.Fprintln(w, "REVISION\tUPDATED\tSTATUS\tPACKAGE\tDESCRIPTION")
			for _, r := range hist {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s %s\t%s\n", r.Revision, r.Updated.Format(time.RFC3339), r.Status, r.Package.Name, r.Package.Version, oneLine(r.Description))
			}
			return w.Flush()
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newStatus(a *app) *cobra.Command {
	var cf clusterFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status DEPLOYMENT",
		Short: "Show a deployment's revision and the readiness of its objects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, objs, err := install.Status(cmd.Context(), cf.cluster(), cf.namespace, args[0])
			if err != nil && !errors.Is(err, install.ErrMissing) {
				return err
			}
			if output == "json" {
				if err := json.NewEncoder(a.streams.Out).Encode(map[string]any{"record": rec, "objects": objs}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.streams.Out, "%s: %s %s, revision %d, %s\n", rec.Deployment, rec.Package.Name, rec.Package.Version, rec.Revision, rec.Status)
				w := a.table()
				fmt.Fprintln(w, "COMPONENT\tOBJECT\tSTATUS\tMESSAGE")
				for _, o := range objs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", o.Component, o.Object, o.Status, o.Message)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				if len(rec.Steps) > 0 {
					printStepRuns(a.streams.Out, rec.Steps)
				}
			}
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// printStepRuns lists the command and Job steps a revision ran.
func printStepRuns(out io.Writer, steps []release.StepRun) {
	fmt.Fprintln(out, "\nSTEPS RUN")
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PHASE\tSTEP\tKIND\tRESULT\tEXIT\tDURATION\tJOB KEPT")
	for _, st := range steps {
		exit := "-"
		if st.Kind == "run" && st.ExitCode >= 0 {
			exit = fmt.Sprint(st.ExitCode)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Phase, st.Name, st.Kind, st.Result, exit, orDash(st.Duration), orDash(st.Job))
	}
	w.Flush()
}
