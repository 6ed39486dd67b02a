package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newVerify) }

func newVerify(a *app) *cobra.Command {
	var tf trustFlags
	cmd := &cobra.Command{
		Use:   "verify ARCHIVE",
		Short: "Check every digest, the package graph and the signature",
		Long: `Verify reads the archive once, from start to end, checking every blob's
digest and size, that the package graph is complete and holds nothing else,
and that a trusted key signed it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			trust, err := tf.trust(a)
			if err != nil {
				return err
			}
			res, err := bundle.Verify(cmd.Context(), args[0], bundle.VerifyOptions{})
			if err != nil {
				return err
			}
			p, err := install.Open(cmd.Context(), args[0], trust)
			if err != nil {
				return err
			}
			defer p.Close()
			signed := "signature NOT checked"
			if trust != nil {
				signed = "signed by " + strings.Join(p.SignedBy, ", ")
			}
			fmt.Fprintf(a.streams.Out, "%s: ok: %s %s, %d blobs, %s verified, %s\n", args[0],
				p.Description.Name, p.Description.Version, res.Blobs, humanBytes(res.Bytes), signed)
			return nil
		},
	}
	tf.add(cmd)
	return cmd
}
