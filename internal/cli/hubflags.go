package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hubclient"
)

// hubFlags configure access to a hub.
type hubFlags struct {
	caFile   string
	insecure bool
}

func (f *hubFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.caFile, "hub-ca-file", "", "PEM CA bundle to trust for the hub")
	cmd.Flags().BoolVar(&f.insecure, "hub-insecure", false, "skip TLS verification for the hub")
}

// client returns a client of hub with the stored login, if any.
func (f *hubFlags) client(hub string) (*hubclient.Client, error) {
	o := hubclient.Options{CAFile: f.caFile, Insecure: f.insecure}
	path, err := hubclient.DefaultConfigPath()
	if err != nil {
		return nil, err
	}
	cfg, err := hubclient.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	host := hubHost(hub)
	if l, ok := cfg.Hubs[host]; ok {
		o.Username, o.Token = l.Username, l.Token
	}
	return hubclient.New(host, o)
}

// mustLogin is client, failing when there is no stored login.
func (f *hubFlags) mustLogin(hub string) (*hubclient.Client, error) {
	c, err := f.client(hub)
	if err != nil {
		return nil, err
	}
	path, _ := hubclient.DefaultConfigPath()
	cfg, _ := hubclient.LoadConfig(path)
	if _, ok := cfg.Hubs[c.Host()]; !ok {
		return nil, fmt.Errorf("not logged in to %s: run `skiff login %s --username NAME`", c.Host(), c.Host())
	}
	return c, nil
}

func hubHost(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "/")
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
// returned cleanup removes; anything else is returned as is.
func hubArchive(ctx context.Context, a *app, arg string) (string, func(), error) {
	if !hubclient.LooksLikeRef(arg) {
		return arg, func() {}, nil
	}
	ref, err := hubclient.ParseRef(arg)
	if err != nil {
		return "", nil, err
	}
	var f hubFlags
	c, err := f.client(ref.Hub)
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
