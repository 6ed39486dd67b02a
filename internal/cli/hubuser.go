package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() {
	registerHub(newHubUser)
	registerHub(newHubGroup)
}

func newHubUser(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage hub users and their permissions"}
	cmd.AddCommand(newHubUserAdd(a), newHubUserGrant(a))
	return cmd
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
	}))
	return cmd
}
