package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/vuln"
)

func init() { registerHub(newHubRescan) }

// hubVulnGate returns the vulnerability gate of `hub serve`, or nil when
// none of --vuln-db, --fail-on and --policy is given (or --fail-on none).
// The database must exist when the hub starts; it is reopened for every
// review, so `skiff vulndb import` updates it in place.
func hubVulnGate(a *app, f *gateFlags) (*hub.Gate, error) {
	if f.db == "" && f.failOn == "" && f.policy == "" {
		return nil, nil
	}
	pol, err := f.load()
	if err != nil {
		return nil, err
	}
	if pol.FailOn == vuln.SeverityNone {
		a.log.Warn("hub vulnerability gate off (--fail-on none)")
		return nil, nil
	}
	dir, err := f.dir()
	if err != nil {
		return nil, err
	}
	db, err := vuln.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("the hub's vulnerability gate: %w", err)
	}
	failOn := pol.FailOn
	if failOn == vuln.SeverityUnknown {
		failOn = vuln.DefaultFailOn
	}
	a.status("vulnerability gate: blocking %s and above (advisories imported %s from %s)", failOn, db.Meta.Imported.Format(time.DateOnly), dir)
	g := hub.VulnGate(hub.VulnGateOptions{DBDir: dir, Policy: pol})
	return &g, nil
}

func newHubRescan(a *app) *cobra.Command {
	var (
		f   hubFlags
		all bool
	)
	cmd := &cobra.Command{
		Use:   "rescan HUB/OWNER/NAME:VERSION | HUB --all",
		Short: "Run a published package's gates again (after a vulnerability database update)",
		Long: `Rescan has the hub run the gates of one package (an administrator of its
owner) or of every pending, approved and blocked package (--all, a site
administrator) again, typically after ` + "`skiff vulndb import`" + ` on the hub. A
package that now fails becomes blocked: readers can no longer pull it.
A blocked package that passes again becomes pending and needs new
approvals. Every change is audited. Exits with code 3 when a package
is blocked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				res []hub.RescanResult
				err error
			)
			if all {
				if addr, perr := endpoint.Parse(args[0]); perr == nil && addr.Path != "" {
					return fmt.Errorf("with --all, give only the hub (host[:port]), not %s", args[0])
				}
				c, cerr := f.mustLogin(args[0])
				if cerr != nil {
					return cerr
				}
				res, err = c.Rescan(cmd.Context(), "", "", "", true)
			} else {
				ref, perr := hubclient.ParseRef(args[0])
				if perr != nil {
					return fmt.Errorf("%w (or give HUB --all)", perr)
				}
				c, cerr := f.mustLogin(ref.Hub)
				if cerr != nil {
					return cerr
				}
				res, err = c.Rescan(cmd.Context(), ref.Owner, ref.Name, ref.Version, false)
			}
			if err != nil {
				return err
			}
			blocked := 0
			for _, r := range res {
				fmt.Fprintf(a.streams.Out, "%s: %s -> %s\n", r.Package, r.Before, r.After)
				for _, g := range r.Gates {
					if !g.Passed {
						fmt.Fprintf(a.streams.Out, "  gate %s: FAILED: %s\n", g.Name, strings.ReplaceAll(g.Message, "\n", "\n    "))
					}
				}
				if r.After == hub.StatusBlocked {
					blocked++
				}
			}
			if blocked > 0 {
				return &ExitError{Code: exitBlocked, Err: fmt.Errorf("%d of %d package(s) blocked: readers can no longer pull them; publish fixed versions (or accept the findings in the hub's --policy and rescan)", blocked, len(res))}
			}
			a.status("%d package(s) rescanned, none blocked", len(res))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "rescan every pending, approved and blocked package (site administrator)")
	f.add(cmd)
	return cmd
}
