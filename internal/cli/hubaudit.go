package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { registerHub(newHubAudit) }

func newHubAudit(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and verify the hub's hash-chained audit log"}
	cmd.AddCommand(newHubAuditVerify(a), newHubAuditLog(a))
	return cmd
}

func newHubAuditVerify(a *app) *cobra.Command {
	var (
		f hubFlags
		d dbFlags
	)
	return d.targetCmd(&f, &cobra.Command{
		Use:   "verify [HUB]",
		Short: "Check that no audit entry was edited, deleted, inserted or reordered",
	}, 0, func(ctx context.Context, t hubTarget, _ []string) error {
		var (
			rep *hub.AuditReport
			err error
		)
		if t.store != nil {
			// A tampered log is a report with problems, and an error.
			if rep, err = t.store.VerifyAudit(ctx); rep == nil {
				return err
			}
		} else if rep, err = t.client.VerifyAudit(ctx); err != nil {
			return err
		}
		if !rep.OK {
			for _, p := range rep.Problems {
				fmt.Fprintf(a.streams.Out, "problem: %s\n", p)
			}
			return &ExitError{Code: 1, Err: fmt.Errorf("%w: %d entries, %d problem(s)", hub.ErrAuditTampered, rep.Entries, len(rep.Problems))}
		}
		fmt.Fprintf(a.streams.Out, "ok: %d entries, head %s\n", rep.Entries, short(rep.Head))
		return nil
	})
}

func newHubAuditLog(a *app) *cobra.Command {
	var (
		f     hubFlags
		after int64
		limit int
	)
	cmd := f.hubCmd(&cobra.Command{
		Use:   "log HUB",
		Short: "Print audit entries",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		es, err := c.Audit(ctx, after, limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tDETAILS")
		for _, e := range es {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time, e.Actor, e.Action, e.Target, strings.ReplaceAll(e.Details, "\t", " "))
		}
		return w.Flush()
	})
	cmd.Flags().Int64Var(&after, "after", 0, "entries after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "entries to print")
	return cmd
}
