package cli

import (
	"context"
	"errors"
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
	cmd.AddCommand(newHubAuditVerify(a), newHubAuditLog(a), newHubAuditReseal(a))
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

func newHubAuditReseal(a *app) *cobra.Command {
	var d dbFlags
	cmd := &cobra.Command{
		Use:   "reseal --root DIR",
		Short: "Let a hub whose audit log was altered record again, documenting the damage in the log",
		Long: `A hub refuses every audited change once its audit log lost entries
from its end, or its head file (ROOT/audit-head.json): the next entry would
hide the loss. After investigating, restore a backup (skiff hub restore),
or reseal: this appends an audit.reseal entry listing the problems
` + "`audit verify`" + ` finds and the head that was recorded, and makes it
the head. Run it on the hub's directory (--root, and --database-url for
PostgreSQL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !d.direct() {
				return errors.New("reseal works on the hub's directory: pass --root DIR")
			}
			ctx := cmd.Context()
			st, err := d.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := st.ResealAudit(ctx, "local:"+currentUser())
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(a.streams.Out, "recorded problem: %s\n", p)
			}
			fmt.Fprintf(a.streams.Out, "resealed: %d entries before the reseal entry\n", rep.Entries)
			return nil
		},
	}
	d.add(cmd)
	return cmd
}
