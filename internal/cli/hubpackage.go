package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() {
	registerHub(newHubApprove)
	registerHub(newHubReject)
	registerHub(newHubRemove)
	registerHub(newHubShow)
}

// reviewCall is the client call of a review verb; comment is empty for
// verbs without --comment.
type reviewCall func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref, comment string) (*hub.Package, error)

func newHubApprove(a *app) *cobra.Command {
	return newHubReview(a, "approve", "Approve a pending package (admin of its owner, not the uploader)", true,
		func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref, comment string) (*hub.Package, error) {
			return c.Approve(ctx, ref.Owner, ref.Name, ref.Version, comment)
		})
}

func newHubReject(a *app) *cobra.Command {
	return newHubReview(a, "reject", "Reject a quarantined or pending package", true,
		func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref, comment string) (*hub.Package, error) {
			return c.Reject(ctx, ref.Owner, ref.Name, ref.Version, comment)
		})
}

func newHubRemove(a *app) *cobra.Command {
	return newHubReview(a, "remove", "Withdraw a package: readers can no longer pull it", false,
		func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref, _ string) (*hub.Package, error) {
			return c.Remove(ctx, ref.Owner, ref.Name, ref.Version)
		})
}

// newHubReview builds a review verb (approve, reject, remove) that prints
// the package's new status; withComment adds --comment.
func newHubReview(a *app, verb, short string, withComment bool, call reviewCall) *cobra.Command {
	var (
		f       hubFlags
		comment string
	)
	cmd := f.packageCmd(&cobra.Command{Use: verb + " HUB/OWNER/NAME:VERSION", Short: short},
		func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref) error {
			p, err := call(ctx, c, ref, comment)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: %s\n", ref, p.Status)
			return nil
		})
	if withComment {
		cmd.Flags().StringVarP(&comment, "comment", "m", "", "a comment recorded with the decision")
	}
	return cmd
}

func newHubShow(a *app) *cobra.Command {
	var f hubFlags
	return f.packageCmd(&cobra.Command{
		Use:   "show HUB/OWNER/NAME:VERSION",
		Short: "Show a package's metadata, gate results and approvals (JSON)",
	}, func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref) error {
		p, err := c.Package(ctx, ref.Owner, ref.Name, ref.Version)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(a.streams.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	})
}

// printReview prints a package's status, gate results and approvals.
func printReview(a *app, p *hub.Package) {
	fmt.Fprintf(a.streams.Out, "status: %s\n", p.Status)
	for _, g := range p.Gates {
		mark := "passed"
		if !g.Passed {
			mark = "FAILED"
		}
		if g.Message != "" {
			fmt.Fprintf(a.streams.Out, "gate %s: %s: %s\n", g.Name, mark, g.Message)
		} else {
			fmt.Fprintf(a.streams.Out, "gate %s: %s\n", g.Name, mark)
		}
	}
	for _, ap := range p.Approvals {
		fmt.Fprintf(a.streams.Out, "%s by %s at %s %s\n", ap.Decision, ap.User, ap.Time.Format(time.RFC3339), ap.Comment)
	}
}
