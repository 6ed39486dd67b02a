package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() {
	registerHub(newHubUser)
	registerHub(newHubGroup)
	registerHub(newHubPassword)
}

func newHubUser(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage hub users and their permissions"}
	cmd.AddCommand(newHubUserAdd(a), newHubUserGrant(a))
	yes, no := true, false
	for _, v := range []struct {
		use, short, done string
		u                hub.UserUpdate
	}{
		{"disable", "Disable a user: no logins, and their tokens are revoked", "disabled", hub.UserUpdate{Disabled: &yes}},
		{"enable", "Enable a disabled user again", "enabled", hub.UserUpdate{Disabled: &no}},
		{"make-admin", "Make a user a site administrator", "is a site administrator", hub.UserUpdate{Admin: &yes}},
		{"revoke-admin", "Take site administration away from a user", "is no longer a site administrator", hub.UserUpdate{Admin: &no}},
	} {
		cmd.AddCommand(newHubUserAction(a, v.use+" [HUB] NAME", v.short, v.done, func(ctx context.Context, t hubTarget, actor, name string) error {
			if t.store != nil {
				return t.store.UpdateUserAs(ctx, actor, name, v.u)
			}
			_, err := t.client.UpdateUser(ctx, name, v.u)
			return err
		}))
	}
	cmd.AddCommand(
		newHubUserAction(a, "remove [HUB] NAME", "Remove a user with their tokens, grants and group memberships", "removed", func(ctx context.Context, t hubTarget, actor, name string) error {
			if t.store != nil {
				return t.store.RemoveUserAs(ctx, actor, name)
			}
			return t.client.RemoveUser(ctx, name)
		}),
		newHubUserAction(a, "reset-mfa [HUB] NAME", "Turn MFA off for a user who lost their device (their tokens are revoked)", "has MFA off: log in with the password and enrol again", func(ctx context.Context, t hubTarget, actor, name string) error {
			if t.store != nil {
				return t.store.ResetMFAAs(ctx, actor, name)
			}
			return t.client.ResetMFA(ctx, name)
		}),
		newHubUserResetPassword(a),
	)
	return cmd
}

// newHubUserAction is an audited change of one user, through a running
// hub (as a site administrator) or with --root on its database.
func newHubUserAction(a *app, use, short, done string, run func(ctx context.Context, t hubTarget, actor, name string) error) *cobra.Command {
	var (
		f hubFlags
		d dbFlags
	)
	return d.targetCmd(&f, &cobra.Command{Use: use, Short: short}, 1, func(ctx context.Context, t hubTarget, args []string) error {
		if err := run(ctx, t, "local:"+currentUser(), args[0]); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "%s %s\n", args[0], done)
		return nil
	})
}

func newHubUserResetPassword(a *app) *cobra.Command {
	var (
		f hubFlags
		d dbFlags
	)
	return d.targetCmd(&f, &cobra.Command{
		Use:   "reset-password [HUB] NAME",
		Short: "Set a user's password (from $SKIFF_PASSWORD, else generated and printed); their tokens are revoked",
	}, 1, func(ctx context.Context, t hubTarget, args []string) error {
		name, pw := args[0], os.Getenv("SKIFF_PASSWORD")
		gen := pw == ""
		if t.store != nil {
			if gen {
				pw = hub.RandomPassword()
			}
			if err := t.store.ResetPasswordAs(ctx, "local:"+currentUser(), name, pw); err != nil {
				return err
			}
		} else {
			got, err := t.client.ResetPassword(ctx, name, pw)
			if err != nil {
				return err
			}
			pw = got
		}
		if gen {
			fmt.Fprintf(a.streams.Out, "new password of %s: %s\n", name, pw)
		} else {
			fmt.Fprintf(a.streams.Out, "password of %s set\n", name)
		}
		return nil
	})
}

func newHubUserAdd(a *app) *cobra.Command {
	var (
		f     hubFlags
		d     dbFlags
		admin bool
	)
	cmd := d.targetCmd(&f, &cobra.Command{
		Use:   "add [HUB] NAME",
		Short: "Add a user (password from $SKIFF_PASSWORD, else generated and printed)",
		Long: `Add creates a user through a running hub (as a site administrator), or
with --root DIR directly in the hub's database, which also works before
the first administrator exists.`,
	}, 1, func(ctx context.Context, t hubTarget, args []string) error {
		name := args[0]
		pw := os.Getenv("SKIFF_PASSWORD")
		if t.store != nil {
			gen := pw == ""
			if gen {
				pw = hub.RandomPassword()
			}
			if err := t.store.AddUserAs(ctx, "local:"+currentUser(), name, pw, admin); err != nil {
				return err
			}
			printNewUser(a, name, pw, gen)
			return nil
		}
		gen, err := t.client.AddUser(ctx, name, pw, admin)
		if err != nil {
			return err
		}
		printNewUser(a, name, gen, gen != "")
		return nil
	})
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user a site administrator")
	return cmd
}

func newHubUserGrant(a *app) *cobra.Command {
	var (
		f hubFlags
		d dbFlags
	)
	return d.targetCmd(&f, &cobra.Command{
		Use:   "grant [HUB] OWNER SUBJECT LEVEL",
		Short: "Give a user (NAME or user:NAME) or group (group:NAME) read, write, admin or none on an owner",
	}, 3, func(ctx context.Context, t hubTarget, args []string) error {
		owner, subject, level := args[0], args[1], args[2]
		if t.store != nil {
			l, err := hub.ParseLevel(level)
			if err != nil {
				return err
			}
			if err := t.store.GrantAs(ctx, "local:"+currentUser(), owner, subject, l); err != nil {
				return err
			}
		} else if err := t.client.Grant(ctx, owner, subject, level); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "%s has %s on %s\n", subject, level, owner)
		return nil
	})
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
	cmd.AddCommand(f.hubCmd(&cobra.Command{
		Use:   "add HUB GROUP USER",
		Short: "Add a user to a group (creating it)",
		Args:  cobra.ExactArgs(3),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		group, user := args[0], args[1]
		if err := c.AddGroupMember(ctx, group, user); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "%s is in group %s\n", user, group)
		return nil
	}), f.hubCmd(&cobra.Command{
		Use:   "remove HUB GROUP USER",
		Short: "Take a user out of a group",
		Args:  cobra.ExactArgs(3),
	}, func(ctx context.Context, c *hubclient.Client, args []string) error {
		group, user := args[0], args[1]
		if err := c.RemoveGroupMember(ctx, group, user); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Out, "%s is no longer in group %s\n", user, group)
		return nil
	}))
	return cmd
}

func newHubPassword(a *app) *cobra.Command {
	var (
		f   hubFlags
		otp string
	)
	cmd := f.hubCmd(&cobra.Command{
		Use:   "password HUB [--otp CODE]",
		Short: "Change your password; your other tokens are revoked",
		Long: `Password asks for your current password ($SKIFF_PASSWORD) and the new one
($SKIFF_NEW_PASSWORD), on the terminal when they are not set, and the
current code (--otp) when MFA is on. Every other token of yours is revoked.`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *hubclient.Client, _ []string) error {
		cur, err := hubPassword(a, "current password")
		if err != nil {
			return err
		}
		next := os.Getenv("SKIFF_NEW_PASSWORD")
		if next == "" {
			b, err := readPassword(a, "new password", true)
			if err != nil {
				return errors.New("no new password: set SKIFF_NEW_PASSWORD or run on a terminal")
			}
			next = string(b)
		}
		if err := c.ChangePassword(ctx, cur, otp, next); err != nil {
			return err
		}
		fmt.Fprintln(a.streams.Out, "password changed; your other tokens are revoked")
		return nil
	})
	cmd.Flags().StringVar(&otp, "otp", "", "current one-time code, when MFA is on")
	return cmd
}
