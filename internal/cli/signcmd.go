package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/sign"
)

func init() { register(newSign) }

func newSign(a *app) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sign ARCHIVE --key KEY",
		Short: "Add a signature to a package archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readPrivateKey(a, keyFile)
			if err != nil {
				return err
			}
			p, err := install.Open(cmd.Context(), args[0], bundle.OpenOptions{SkipSignature: true}) // signing adds a signature, it does not need one
			if err != nil {
				return err
			}
			d, root := p.Description, p.Root
			p.Close()
			env, err := sign.Sign(cmd.Context(), key, sign.Subject{Name: d.Name + ":" + d.Version, Digest: root.Digest}, build.Predicate(d))
			if err != nil {
				return err
			}
			if err := bundle.AddSignature(cmd.Context(), args[0], env); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: signed by %s\n", args[0], key.ID())
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (see skiff keygen)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
