package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

func init() { register(newHub) }

func newHub(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run and administer a Skiff hub (an offline package repository)",
		Long: `A hub stores packages for a site: publishers push signed archives
(skiff push), the hub checks them, administrators approve them, and
everyone with read permission pulls or installs approved packages
(skiff pull, skiff install HUB/OWNER/NAME:VERSION). See docs/hub.md.`,
	}
	cmd.AddCommand(newHubServe(a), newHubReview(a, "approve"), newHubReview(a, "reject"), newHubReview(a, "remove"),
		newHubShow(a), newHubUser(a), newHubGroup(a), newHubToken(a), newHubMFA(a), newHubAudit(a))
	for _, f := range hubVerbs {
		cmd.AddCommand(f(a))
	}
	return cmd
}

// hubVerbs are hub subcommands defined in their own files.
var hubVerbs []func(*app) *cobra.Command

// registerHub adds a hub subcommand (call it from init).
func registerHub(f func(*app) *cobra.Command) { hubVerbs = append(hubVerbs, f) }

func newHubServe(a *app) *cobra.Command {
	var (
		o         hub.Options
		so        hub.ServeOptions
		addr      string
		addrFile  string
		initAdmin string
		gf        gateFlags
		sf        storageFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --root DIR [--addr 127.0.0.1:8443]",
		Short: "Serve a hub",
		Long: `Serve runs the hub: the OCI distribution API under /v2/, the JSON API
under /api/v1/ and a web UI under /ui/ (open http://ADDR/ui/ in a browser
to search, inspect and review packages; / redirects there), with metadata
in DIR/hub.db (SQLite) or the PostgreSQL database of --database-url.
--init-admin NAME creates the first site administrator and prints its
password once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			o.Logger = a.log
			if err := sf.apply(&o); err != nil {
				return err
			}
			g, err := hubVulnGate(a, &gf) // hubrescan.go
			if err != nil {
				return err
			}
			if g != nil {
				o.Gates = append(o.Gates, *g)
			}
			h, err := hub.New(ctx, o)
			if err != nil {
				return err
			}
			defer h.Close()
			if initAdmin != "" {
				pw, err := h.Store().InitAdmin(ctx, initAdmin)
				if err != nil {
					return err
				}
				if pw != "" {
					fmt.Fprintf(a.streams.Out, "created site administrator %s with password %s\n", initAdmin, pw)
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listening on %s: %w (pick another --addr)", addr, err)
			}
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
					ln.Close()
					return err
				}
			}
			scheme := "http"
			if so.CertFile != "" {
				scheme = "https"
			}
			a.status("hub listening on %s://%s (root %s, %d approval(s) required)", scheme, ln.Addr(), o.Root, max(o.Approvals, 1))
			return h.Serve(ctx, ln, so)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Root, "root", "skiff-hub", "directory for storage, the SQLite database and the audit head")
	fl.StringVar(&addr, "addr", "127.0.0.1:8443", "address to listen on")
	fl.StringVar(&addrFile, "addr-file", "", "write the listening address to this file (with --addr 127.0.0.1:0)")
	fl.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) instead of SQLite")
	fl.IntVar(&o.Approvals, "approvals", hub.DefaultApprovals, "approvals needed by administrators other than the uploader")
	fl.StringVar(&o.TrustDir, "trust-dir", "", "public keys (*.pub) packages must be signed with (required unless --allow-unsigned)")
	fl.BoolVar(&o.AllowUnsigned, "allow-unsigned", false, "skip the signature gate (test hubs only)")
	fl.DurationVar(&o.TokenTTL, "token-ttl", hub.DefaultTokenTTL, "lifetime of login tokens")
	fl.StringVar(&initAdmin, "init-admin", "", "create this site administrator if missing and print its password")
	fl.StringVar(&so.CertFile, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&so.KeyFile, "tls-key", "", "TLS private key (PEM)")
	gf.add(cmd) // the vulnerability gate: on when any of its flags is given
	sf.add(cmd)
	return cmd
}

// storageFlags select the hub's content storage.
type storageFlags struct {
	kind string
	s3   skregistry.S3Storage
}

func (f *storageFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "storage", "filesystem", "where package content is stored: filesystem (ROOT/storage) or s3")
	fl.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "URL of an S3-compatible service (empty: AWS); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	fl.StringVar(&f.s3.Bucket, "s3-bucket", "", "S3 bucket (must exist)")
	fl.StringVar(&f.s3.Region, "s3-region", "", "S3 region (required for AWS)")
	fl.StringVar(&f.s3.RootDirectory, "s3-prefix", "", "key prefix inside the bucket")
	fl.BoolVar(&f.s3.ForcePathStyle, "s3-path-style", true, "address the bucket as ENDPOINT/BUCKET (S3-compatible services); false for virtual-hosted style")
}

func (f *storageFlags) apply(o *hub.Options) error {
	switch f.kind {
	case "filesystem", "":
		return nil
	case "s3":
		s := f.s3
		s.AccessKey, s.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		s.Insecure = strings.HasPrefix(s.Endpoint, "http://")
		if s.Bucket == "" {
			return errors.New("--storage s3 needs --s3-bucket NAME")
		}
		o.Storage.S3 = &s
		return nil
	}
	return fmt.Errorf("--storage %q: use filesystem or s3", f.kind)
}

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

func newHubReview(a *app, verb string) *cobra.Command {
	var (
		f       hubFlags
		comment string
	)
	short := map[string]string{
		"approve": "Approve a pending package (admin of its owner, not the uploader)",
		"reject":  "Reject a quarantined or pending package",
		"remove":  "Withdraw a package: readers can no longer pull it",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " HUB/OWNER/NAME:VERSION",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := hubclient.ParseRef(args[0])
			if err != nil {
				return err
			}
			c, err := f.mustLogin(ref.Hub)
			if err != nil {
				return err
			}
			var p *hub.Package
			switch verb {
			case "approve":
				p, err = c.Approve(cmd.Context(), ref.Owner, ref.Name, ref.Version, comment)
			case "reject":
				p, err = c.Reject(cmd.Context(), ref.Owner, ref.Name, ref.Version, comment)
			default:
				p, err = c.Remove(cmd.Context(), ref.Owner, ref.Name, ref.Version)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: %s\n", ref, p.Status)
			return nil
		},
	}
	if verb != "remove" {
		cmd.Flags().StringVarP(&comment, "comment", "m", "", "a comment recorded with the decision")
	}
	f.add(cmd)
	return cmd
}

func newHubShow(a *app) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "show HUB/OWNER/NAME:VERSION",
		Short: "Show a package's metadata, gate results and approvals (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := hubclient.ParseRef(args[0])
			if err != nil {
				return err
			}
			c, err := f.mustLogin(ref.Hub)
			if err != nil {
				return err
			}
			p, err := c.Package(cmd.Context(), ref.Owner, ref.Name, ref.Version)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.streams.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		},
	}
	f.add(cmd)
	return cmd
}

// dbFlags select direct database access instead of a running hub.
type dbFlags struct {
	root, databaseURL string
}

func (d *dbFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&d.root, "root", "", "work on the hub directory directly (no HUB argument; the hub may be stopped)")
	cmd.Flags().StringVar(&d.databaseURL, "database-url", "", "with --root: the hub's PostgreSQL URL")
}

func (d *dbFlags) direct() bool { return d.root != "" }

func (d *dbFlags) open(ctx context.Context) (*hub.Store, error) {
	return hub.OpenStore(ctx, hub.StoreOptions{Root: d.root, DatabaseURL: d.databaseURL})
}

// hubArgs checks the argument count: n with --root, n+1 (HUB first) without.
func hubArgs(d *dbFlags, n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		want := n + 1
		if d.direct() {
			want = n
		}
		if len(args) != want {
			return fmt.Errorf("want %d arguments (%s), got %d", want, cmd.Use, len(args))
		}
		return nil
	}
}

func newHubUser(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage hub users and their permissions"}
	{
		var (
			f     hubFlags
			d     dbFlags
			admin bool
		)
		add := &cobra.Command{
			Use:   "add [HUB] NAME",
			Short: "Add a user (password from $SKIFF_PASSWORD, else generated and printed)",
			Long: `Add creates a user through a running hub (as a site administrator), or
with --root DIR directly in the hub's database, which also works before
the first administrator exists.`,
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				name := args[len(args)-1]
				pw := os.Getenv("SKIFF_PASSWORD")
				if d.direct() {
					st, err := d.open(ctx)
					if err != nil {
						return err
					}
					defer st.Close()
					gen := pw == ""
					if gen {
						pw = hub.RandomPassword()
					}
					if err := st.AddUserAs(ctx, "local:"+currentUser(), name, pw, admin); err != nil {
						return err
					}
					printNewUser(a, name, pw, gen)
					return nil
				}
				c, err := f.mustLogin(args[0])
				if err != nil {
					return err
				}
				gen, err := c.AddUser(ctx, name, pw, admin)
				if err != nil {
					return err
				}
				printNewUser(a, name, gen, gen != "")
				return nil
			},
		}
		add.Args = hubArgs(&d, 1)
		add.Flags().BoolVar(&admin, "admin", false, "make the user a site administrator")
		f.add(add)
		d.add(add)
		cmd.AddCommand(add)
	}
	{
		var (
			f hubFlags
			d dbFlags
		)
		grant := &cobra.Command{
			Use:   "grant [HUB] OWNER SUBJECT LEVEL",
			Short: "Give a user (NAME or user:NAME) or group (group:NAME) read, write, admin or none on an owner",
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				owner, subject, level := args[len(args)-3], args[len(args)-2], args[len(args)-1]
				if d.direct() {
					st, err := d.open(ctx)
					if err != nil {
						return err
					}
					defer st.Close()
					l, err := hub.ParseLevel(level)
					if err != nil {
						return err
					}
					if err := st.GrantAs(ctx, "local:"+currentUser(), owner, subject, l); err != nil {
						return err
					}
				} else {
					c, err := f.mustLogin(args[0])
					if err != nil {
						return err
					}
					if err := c.Grant(ctx, owner, subject, level); err != nil {
						return err
					}
				}
				fmt.Fprintf(a.streams.Out, "%s has %s on %s\n", subject, level, owner)
				return nil
			},
		}
		grant.Args = hubArgs(&d, 3)
		f.add(grant)
		d.add(grant)
		cmd.AddCommand(grant)
	}
	return cmd
}

func printNewUser(a *app, name, pw string, generated bool) {
	if generated {
		fmt.Fprintf(a.streams.Out, "added user %s with password %s\n", name, pw)
		return
	}
	fmt.Fprintf(a.streams.Out, "added user %s\n", name)
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func newHubGroup(a *app) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{Use: "group", Short: "Manage hub groups"}
	add := &cobra.Command{
		Use:   "add HUB GROUP USER",
		Short: "Add a user to a group (creating it)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.mustLogin(args[0])
			if err != nil {
				return err
			}
			if err := c.AddGroupMember(cmd.Context(), args[1], args[2]); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s is in group %s\n", args[2], args[1])
			return nil
		},
	}
	f.add(add)
	cmd.AddCommand(add)
	return cmd
}

func newHubToken(a *app) *cobra.Command {
	var (
		f   hubFlags
		ttl time.Duration
	)
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	create := &cobra.Command{
		Use:   "create HUB NAME",
		Short: "Create an API token for yourself (for CI); it is printed once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.mustLogin(args[0])
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), args[1], ttl)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s\n", t.Secret)
			a.status("token %s for %s expires %s", t.Name, t.User, t.Expires.Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "token lifetime")
	f.add(create)
	cmd.AddCommand(create)
	return cmd
}

func newHubMFA(a *app) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{Use: "mfa", Short: "Turn on TOTP multi-factor authentication for your account"}
	enroll := &cobra.Command{
		Use:   "enroll HUB",
		Short: "Start enrolment: prints the secret and otpauth:// URL for an authenticator app",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.mustLogin(args[0])
			if err != nil {
				return err
			}
			e, err := c.EnrollMFA(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "secret: %s\nurl: %s\n", e.Secret, e.URL)
			a.status("add it to your authenticator app, then run `skiff hub mfa confirm %s --otp CODE`", c.Host())
			return nil
		},
	}
	var otp string
	confirm := &cobra.Command{
		Use:   "confirm HUB --otp CODE",
		Short: "Finish enrolment with the authenticator's current code",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.mustLogin(args[0])
			if err != nil {
				return err
			}
			if err := c.ConfirmMFA(cmd.Context(), otp); err != nil {
				return err
			}
			fmt.Fprintln(a.streams.Out, "MFA is on: log in with --otp CODE from now on")
			return nil
		},
	}
	confirm.Flags().StringVar(&otp, "otp", "", "current one-time code")
	f.add(enroll)
	f.add(confirm)
	cmd.AddCommand(enroll, confirm)
	return cmd
}

func newHubAudit(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and verify the hub's hash-chained audit log"}
	{
		var (
			f hubFlags
			d dbFlags
		)
		verify := &cobra.Command{
			Use:   "verify [HUB]",
			Short: "Check that no audit entry was edited, deleted, inserted or reordered",
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				var rep *hub.AuditReport
				if d.direct() {
					st, err := d.open(ctx)
					if err != nil {
						return err
					}
					defer st.Close()
					rep, err = st.VerifyAudit(ctx)
					if rep == nil {
						return err
					}
				} else {
					c, err := f.mustLogin(args[0])
					if err != nil {
						return err
					}
					if rep, err = c.VerifyAudit(ctx); err != nil {
						return err
					}
				}
				if !rep.OK {
					for _, p := range rep.Problems {
						fmt.Fprintf(a.streams.Out, "problem: %s\n", p)
					}
					return &ExitError{Code: 1, Err: fmt.Errorf("%w: %d entries, %d problem(s)", hub.ErrAuditTampered, rep.Entries, len(rep.Problems))}
				}
				fmt.Fprintf(a.streams.Out, "ok: %d entries, head %s\n", rep.Entries, short(rep.Head))
				return nil
			},
		}
		verify.Args = hubArgs(&d, 0)
		f.add(verify)
		d.add(verify)
		cmd.AddCommand(verify)
	}
	{
		var (
			f     hubFlags
			after int64
			limit int
		)
		log := &cobra.Command{
			Use:   "log HUB",
			Short: "Print audit entries",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.mustLogin(args[0])
				if err != nil {
					return err
				}
				es, err := c.Audit(cmd.Context(), after, limit)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tDETAILS")
				for _, e := range es {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time, e.Actor, e.Action, e.Target, strings.ReplaceAll(e.Details, "\t", " "))
				}
				return w.Flush()
			},
		}
		log.Flags().Int64Var(&after, "after", 0, "entries after this sequence number")
		log.Flags().IntVar(&limit, "limit", 100, "entries to print")
		f.add(log)
		cmd.AddCommand(log)
	}
	return cmd
}
