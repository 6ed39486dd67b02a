package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/sign"
)

func init() { register(newTrust) }

func newTrust(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{Use: "trust", Short: "Manage the public keys whose signatures are trusted"}
	cmd.PersistentFlags().StringVar(&dir, "trust-dir", "", "trust directory (default $SKIFF_TRUST_DIR or ~/.config/skiff/trust)")
	trustDir := func() string {
		if dir != "" {
			return dir
		}
		d, err := sign.DefaultTrustDir()
		if err != nil {
			return ".skiff-trust"
		}
		return d
	}
	add := &cobra.Command{
		Use:   "add PUBKEY [NAME]",
		Short: "Trust a public key",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			name := strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			if len(args) == 2 {
				name = args[1]
			}
			if err := sign.AddTrusted(trustDir(), data, name); err != nil {
				return err
			}
			pub, err := sign.ParsePublicKey(data)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "trusted %s (%s) in %s\n", name, pub.ID(), trustDir())
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List trusted keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := sign.LoadTrust(trustDir())
			if err != nil {
				return err
			}
			for _, k := range t.Keys() {
				fmt.Fprintf(a.streams.Out, "%s\t%s\n", k.Name, k.ID)
			}
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME|KEY-ID",
		Short: "Stop trusting a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := sign.RemoveTrusted(trustDir(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "removed %s (%s) from %s\n", k.Name, k.ID, trustDir())
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}
