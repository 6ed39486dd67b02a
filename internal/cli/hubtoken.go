package cli

import (
	"context"
	"fmt"
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
	create.Flags().DurationVar(&ttl, "ttl", 30*24*time.Hour, "token lifetime")
	cmd.AddCommand(create)
	return cmd
}

func newHubMFA(a *app) *cobra.Command {
	var (
		f   hubFlags
		otp string
	)
	cmd := &cobra.Command{Use: "mfa", Short: "Turn on TOTP multi-factor authentication for your account"}
	enroll := f.hubCmd(&cobra.Command{
		Use:   "enroll HUB",
		Short: "Start enrolment: prints the secret and otpauth:// URL for an authenticator app",
		Args:  cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		e, err := c.EnrollMFA(ctx)
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
	cmd.AddCommand(enroll, confirm)
	return cmd
}
