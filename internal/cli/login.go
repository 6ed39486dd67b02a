package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newLogin); register(newLogout) }

func newLogin(a *app) *cobra.Command {
	var (
		f        hubFlags
		username string
		otp      string
		ttl      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login HUB --username NAME",
		Short: "Log in to a Skiff hub",
		Long: `Login exchanges your password (from $SKIFF_PASSWORD, or asked on the
terminal) for an API token, stored with mode 0600 in
~/.config/skiff/hubs.json ($SKIFF_HUBS_FILE overrides). When your account
has MFA on, pass the authenticator's current code with --otp.

The login also remembers how the hub was reached: the address's scheme
(https:// or http://), --hub-ca-file (as an absolute path) and
--hub-insecure. Later commands naming the hub without a scheme or those
flags reach it the same way; a scheme or flag given on the command wins.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return fmt.Errorf("no user name: pass --username NAME")
			}
			pw, err := hubPassword(a, "password for "+username)
			if err != nil {
				return err
			}
			r, err := f.resolve(args[0])
			if err != nil {
				return err
			}
			r.options.Username, r.options.Token = "", ""
			c, err := hubclient.New(r.addr, r.options)
			if err != nil {
				return err
			}
			l, err := r.remember()
			if err != nil {
				return err
			}
			tok, err := c.Login(cmd.Context(), username, pw, otp, ttl)
			if err != nil {
				return err
			}
			path, cfg, err := loadHubConfig()
			if err != nil {
				return err
			}
			l.Username, l.Token, l.Expires = username, tok.Secret, tok.Expires
			cfg.Hubs[c.Host()] = l
			if err := cfg.Save(path); err != nil {
				return fmt.Errorf("storing the login: %w", err)
			}
			fmt.Fprintf(a.streams.Out, "logged in to %s as %s (token expires %s)\n", c.Host(), username, tok.Expires.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user name (required)")
	cmd.Flags().StringVar(&otp, "otp", "", "current one-time code, when MFA is on")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "token lifetime (default: the hub's, 12h)")
	f.add(cmd)
	return cmd
}

// remember returns the login entry keeping how the hub is reached: the
// address's scheme, the CA file (made absolute, so that it works from any
// directory) and whether verification is skipped.
func (r hubAccess) remember() (hubclient.Login, error) {
	a, err := endpoint.Parse(r.addr)
	if err != nil {
		return hubclient.Login{}, err
	}
	l := hubclient.Login{Scheme: a.Scheme, Insecure: r.options.Insecure}
	if r.options.CAFile != "" {
		if l.CAFile, err = filepath.Abs(r.options.CAFile); err != nil {
			return hubclient.Login{}, err
		}
	}
	return l, nil
}

func newLogout(a *app) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "logout HUB",
		Short: "Revoke the stored login's token on the hub and forget it",
		Long: `Logout revokes the stored token on the hub, then removes it from
hubs.json. When the hub cannot be reached (or the token had expired) the
login is forgotten anyway and a warning says so.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ok, err := f.login(args[0])
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(a.streams.Out, "not logged in to %s\n", c.Host())
				return nil
			}
			if err := c.Logout(cmd.Context()); err != nil {
				a.status("skiff: warning: the hub did not revoke the token (%v): revoke it with `skiff hub token revoke` if it may still be valid", err)
			}
			path, cfg, err := loadHubConfig()
			if err != nil {
				return err
			}
			delete(cfg.Hubs, c.Host())
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "logged out of %s\n", c.Host())
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
