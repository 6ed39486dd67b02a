package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// hubFlags configure access to a hub.
type hubFlags struct {
	caFile   string
	insecure bool
}

func (f *hubFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.caFile, "hub-ca-file", "", "PEM CA bundle to trust for the hub (makes a loopback hub TLS too)")
	cmd.Flags().BoolVar(&f.insecure, "hub-insecure", false, "skip TLS verification for the hub")
}

// loadHubConfig reads hubs.json from its default path.
func loadHubConfig() (string, *hubclient.Config, error) {
	path, err := hubclient.DefaultConfigPath()
	if err != nil {
		return "", nil, err
	}
	cfg, err := hubclient.LoadConfig(path)
	if err != nil {
		return "", nil, err
	}
	return path, cfg, nil
}

// client returns a client of the hub at addr with the stored login, if any.
func (f *hubFlags) client(addr string) (*hubclient.Client, error) {
	c, _, err := f.login(addr)
	return c, err
}

// mustLogin is client, failing when there is no stored login.
func (f *hubFlags) mustLogin(addr string) (*hubclient.Client, error) {
	c, ok, err := f.login(addr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("not logged in to %s: run `skiff login %s --username NAME`", c.Host(), c.Host())
	}
	return c, nil
}

// login returns a client of the hub at addr ([https://|http://]HOST[:PORT])
// and whether a login for it is stored.
func (f *hubFlags) login(addr string) (*hubclient.Client, bool, error) {
	r, err := f.resolve(addr)
	if err != nil {
		return nil, false, err
	}
	c, err := hubclient.New(r.addr, r.options)
	return c, r.ok, err
}

// hubAccess is how a hub is reached: its address and client options,
// with the stored login's credentials when ok.
type hubAccess struct {
	addr    string
	options hubclient.Options
	ok      bool
}

// resolve works out how to reach the hub at addr: what the command says
// (its scheme, --hub-ca-file, --hub-insecure) wins; what it leaves out
// comes from the login stored for the hub, which remembers how the hub
// was reached when logging in.
func (f *hubFlags) resolve(addr string) (hubAccess, error) {
	a, err := endpoint.Parse(addr)
	if err != nil {
		return hubAccess{}, fmt.Errorf("hub address: %w", err)
	}
	_, cfg, err := loadHubConfig()
	if err != nil {
		return hubAccess{}, err
	}
	r := hubAccess{options: hubclient.Options{CAFile: f.caFile, Insecure: f.insecure}}
	l, ok := cfg.Hubs[a.Host]
	if ok {
		r.ok = true
		r.options.Username, r.options.Token = l.Username, l.Token
		asksTLS := f.caFile != "" || f.insecure
		if a.Scheme == "" && l.Scheme != "" && !(asksTLS && l.Scheme == endpoint.HTTP) {
			a.Scheme = l.Scheme
		}
		if a.Scheme != endpoint.HTTP {
			if r.options.CAFile == "" && l.CAFile != "" {
				if _, err := os.Stat(l.CAFile); err != nil {
					return hubAccess{}, fmt.Errorf("the CA file stored with the login to %s: %w: pass --hub-ca-file, or log in again with it", a.Host, err)
				}
				r.options.CAFile = l.CAFile
			}
			r.options.Insecure = r.options.Insecure || l.Insecure
		}
	}
	r.addr = a.String()
	return r, nil
}

// hubCmd completes cmd (Use, Short, Args) as a command on a running hub,
// named by the first argument: run gets a logged-in client and the
// remaining arguments.
func (f *hubFlags) hubCmd(cmd *cobra.Command, run func(ctx context.Context, c *hubclient.Client, args []string) error) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := f.mustLogin(args[0])
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args[1:])
	}
	f.add(cmd)
	return cmd
}

// packageCmd completes cmd (Use, Short) as a command on one package,
// named by its only argument HUB/OWNER/NAME:VERSION: run gets a
// logged-in client of HUB and the parsed reference.
func (f *hubFlags) packageCmd(cmd *cobra.Command, run func(ctx context.Context, c *hubclient.Client, ref hubclient.Ref) error) *cobra.Command {
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := hubclient.ParseRef(args[0])
		if err != nil {
			return err
		}
		c, err := f.mustLogin(ref.Hub)
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, ref)
	}
	f.add(cmd)
	return cmd
}

// hubPassword reads a password from $SKIFF_PASSWORD or the terminal.
func hubPassword(a *app, prompt string) (string, error) {
	if p := os.Getenv("SKIFF_PASSWORD"); p != "" {
		return p, nil
	}
	p, err := readPassword(a, prompt, false)
	if err != nil {
		return "", errors.New("no password: set SKIFF_PASSWORD or run on a terminal")
	}
	return string(p), nil
}

// hubArchive resolves an install/upgrade argument: a hub address
// (HUB/OWNER/NAME:VERSION) is pulled into a temporary archive, which the
// returned cleanup removes; anything else is returned as is. hf holds the
// command's hub TLS flags.
func hubArchive(ctx context.Context, a *app, arg string, hf *hubFlags) (string, func(), error) {
	if !hubclient.LooksLikeRef(arg) {
		return arg, func() {}, nil
	}
	ref, err := hubclient.ParseRef(arg)
	if err != nil {
		return "", nil, err
	}
	c, err := hf.client(ref.Hub)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "skiff-pull-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, ref.Name+"-"+ref.Version+".skiff")
	a.status("pulling %s", ref)
	if _, err := c.Pull(ctx, ref.Owner, ref.Name, ref.Version, out, hubclient.PullOptions{}); err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
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

// hubTarget is what an administrative command acts on: the hub's
// database directly (with --root) or a running hub.
type hubTarget struct {
	store  *hub.Store        // with --root
	client *hubclient.Client // otherwise
}

// targetCmd completes cmd (Use, Short, Long) as an administrative command
// taking n arguments after [HUB]: with --root run gets the opened store,
// else a logged-in client of HUB (the first argument); either way the n
// arguments.
func (d *dbFlags) targetCmd(f *hubFlags, cmd *cobra.Command, n int, run func(ctx context.Context, t hubTarget, args []string) error) *cobra.Command {
	cmd.Args = hubArgs(d, n)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if d.direct() {
			st, err := d.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			return run(ctx, hubTarget{store: st}, args)
		}
		c, err := f.mustLogin(args[0])
		if err != nil {
			return err
		}
		return run(ctx, hubTarget{client: c}, args[1:])
	}
	f.add(cmd)
	d.add(cmd)
	return cmd
}
