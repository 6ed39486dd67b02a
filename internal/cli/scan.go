package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/vuln"
)

func init() { register(newScan) }

// exitBlocked is the exit code when the vulnerability gate blocks.
const exitBlocked = 3

// gateFlags configure the vulnerability gate of scan, install and
// upgrade.
type gateFlags struct {
	db     string
	failOn string
	policy string
}

func (f *gateFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.db, "vuln-db", "", "vulnerability database directory (default $XDG_DATA_HOME/skiff/vulndb)")
	fl.StringVar(&f.failOn, "fail-on", "", "block on findings of this severity or higher: critical, high, medium, low or none (default: the policy's, else critical)")
	fl.StringVar(&f.policy, "policy", "", "vulnerability policy file (failOn and an allow-list with expiry dates)")
}

func (f *gateFlags) dir() (string, error) {
	if f.db != "" {
		return f.db, nil
	}
	return vuln.DefaultDir()
}

// load reads the policy, --fail-on overriding its threshold.
func (f *gateFlags) load() (vuln.Policy, error) {
	var p vuln.Policy
	if f.policy != "" {
		lp, err := vuln.LoadPolicy(f.policy)
		if err != nil {
			return p, err
		}
		p = *lp
	}
	if f.failOn != "" {
		s, err := vuln.ParseSeverity(f.failOn)
		if err != nil || s == vuln.SeverityUnknown {
			return p, fmt.Errorf("--fail-on %q: use critical, high, medium, low or none", f.failOn)
		}
		p.FailOn = s
	}
	return p, nil
}

// gate returns the install/upgrade gate, or nil when it is off: it runs
// when a database exists locally or --fail-on or --policy is given, and
// --fail-on none turns it off.
func (f *gateFlags) gate(a *app) (func(context.Context, *install.Package) error, error) {
	dir, err := f.dir()
	if err != nil {
		return nil, err
	}
	if f.failOn == "" && f.policy == "" && !vuln.Exists(dir) {
		a.log.Info("vulnerability gate off: no database", "dir", dir)
		return nil, nil
	}
	pol, err := f.load()
	if err != nil {
		return nil, err
	}
	if pol.FailOn == vuln.SeverityNone {
		a.log.Warn("vulnerability gate off (--fail-on none)")
		return nil, nil
	}
	return func(ctx context.Context, p *install.Package) error {
		db, err := vuln.Open(dir)
		if err != nil {
			return err
		}
		rep, err := vuln.ScanPackage(ctx, db, p.Archive, p.Description, "")
		if err != nil {
			return err
		}
		if err := vuln.Evaluate(rep, pol, time.Now()); err != nil {
			return &ExitError{Code: exitBlocked, Err: err}
		}
		a.status("vulnerability gate passed: %d findings in %d packages of %d images, none blocking (advisories imported %s)",
			len(rep.Findings), rep.Packages, rep.Images, db.Meta.Imported.Format(time.DateOnly))
		return nil
	}, nil
}

func newScan(a *app) *cobra.Command {
	var (
		tf     trustFlags
		gf     gateFlags
		image  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "scan ARCHIVE",
		Short: "Match a package's SBOMs against the offline vulnerability database",
		Long: `Scan verifies the archive's signature, reads the SBOMs it carries and
matches every package in them against the OSV advisories imported with
` + "`skiff vulndb import`" + `. It exits with code 3 when findings at or above
the threshold (--fail-on, the policy's failOn, else critical) are not
accepted by the policy's allow-list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" && output != "table" {
				return fmt.Errorf("-o %q: use table or json", output)
			}
			pol, err := gf.load()
			if err != nil {
				return err
			}
			dir, err := gf.dir()
			if err != nil {
				return err
			}
			db, err := vuln.Open(dir)
			if err != nil {
				return err
			}
			p, err := tf.open(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			rep, err := vuln.ScanPackage(cmd.Context(), db, p.Archive, p.Description, image)
			if err != nil {
				return err
			}
			gateErr := vuln.Evaluate(rep, pol, time.Now())
			if output == "json" {
				enc := json.NewEncoder(a.streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				renderFindings(a, rep)
			}
			if gateErr != nil {
				return &ExitError{Code: exitBlocked, Err: gateErr}
			}
			return nil
		},
	}
	tf.add(cmd)
	gf.add(cmd)
	cmd.Flags().StringVar(&image, "image", "", "scan only this image reference")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func renderFindings(a *app, rep *vuln.Report) {
	fmt.Fprintf(a.streams.Out, "%d findings in %d packages of %d images (advisories imported %s from %s)\n",
		len(rep.Findings), rep.Packages, rep.Images, rep.Database.Imported.Format(time.DateOnly), rep.Database.SourceDigest)
	if len(rep.Findings) == 0 {
		return
	}
	w := a.table()
	fmt.Fprintln(w, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tIMAGE")
	for _, f := range rep.Findings {
		img := f.Image
		if f.Platform != "" {
			img += " (" + f.Platform + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Name, f.InstalledVersion, orDash(f.FixedVersion), img)
	}
	w.Flush()
}
