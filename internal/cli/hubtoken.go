package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() {
	registerHub(newHubToken)
	registerHub(newHubMFA)
}

func newHubToken(a *app) *cobra.Command {
	var (
		f   hubFlags
		ttl time.Duration
	)
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	create := f.hubCmd(&cobra.Command{
		Use:   "create HUB NAME",
		Short: "Create an API token for yourself (for CI); it is printed once",
		Args:  cobra.ExactArgs(2),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		t, err := c.CreateToken(ctx, args[0], ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "%s\n", t.Secret)
		a.status("token %s for %s expires %s", t.Name, t.User, t.Expires.Format(time.RFC3339))
		return nil
	})
	create.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "token lifetime (at most the hub's maximum)")
	var user string
	list := f.hubCmd(&cobra.Command{
		Use:   "list HUB [--user NAME|*]",
		Short: "List your tokens (site administrators: a user's, or everyone's)",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		ts, err := c.Tokens(ctx, user)
		if err != nil {
			return err
		}
		w := a.table()
		fmt.Fprintln(w, "ID\tUSER\tNAME\tKIND\tCREATED\tEXPIRES")
		for _, t := range ts {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Name, t.Kind, t.Created.Format(time.RFC3339), t.Expires.Format(time.RFC3339))
		}
		return w.Flush()
	})
	list.Flags().StringVar(&user, "user", "", "whose tokens (site administrators; * for everyone's)")
	revoke := f.hubCmd(&cobra.Command{
		Use:   "revoke HUB ID",
		Short: "Revoke a token by the ID token list prints",
		Args:  cobra.ExactArgs(2),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("token ID %q: use the ID `skiff hub token list` prints", args[0])
		}
		if err := c.RevokeToken(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "revoked token %d\n", id)
		return nil
	})
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newHubMFA(a *app) *cobra.Command {
	var (
		f   hubFlags
		otp string
	)
	cmd := &cobra.Command{Use: "mfa", Short: "Turn on TOTP multi-factor authentication for your account"}
	enroll := f.hubCmd(&cobra.Command{
		Use:   "enroll HUB [--otp CODE]",
		Short: "Start enrolment: prints the secret and otpauth:// URL for an authenticator app",
		Long: `Enroll needs your password ($SKIFF_PASSWORD, or asked on the terminal)
and, to enrol a new device while MFA is on, the current code (--otp). A
site administrator resets MFA for a lost device (skiff hub user reset-mfa).`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		pw, err := hubPassword(a, "your password")
		if err != nil {
			return err
		}
		e, err := c.EnrollMFA(ctx, pw, otp)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "secret: %s\nurl: %s\n", e.Secret, e.URL)
		a.status("add it to your authenticator app, then run `skiff hub mfa confirm %s --otp CODE`", c.Host())
		return nil
	})
	confirm := f.hubCmd(&cobra.Command{
		Use:   "confirm HUB --otp CODE",
		Short: "Finish enrolment with the authenticator's current code",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		if err := c.ConfirmMFA(ctx, otp); err != nil {
			return err
		}
		fmt.Fprintln(a.streams.Out, "MFA is on: log in with --otp CODE from now on")
		return nil
	})
	confirm.Flags().StringVar(&otp, "otp", "", "current one-time code")
	enroll.Flags().StringVar(&otp, "otp", "", "current one-time code, when MFA is on already")
	cmd.AddCommand(enroll, confirm)
	return cmd
}
