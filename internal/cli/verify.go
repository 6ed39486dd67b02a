package cli

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/bytesize"
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
			opts, err := tf.options(a)
			if err != nil {
				return err
			}
			// A delta leaves out blobs its signed description lists as
			// held by its base; those are reported, every other absence is
			// an error. Load checks the base is really there.
			res, err := bundle.Verify(cmd.Context(), args[0], bundle.VerifyOptions{Allow: func(digest.Digest) bool { return true }})
			if err != nil {
				return err
			}
			p, err := install.Open(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			defer p.Close()
			signed := "signature NOT checked"
			if !opts.SkipSignature {
				signed = "signed by " + strings.Join(p.SignedBy, ", ")
			}
			fmt.Fprintf(a.streams.Out, "%s: ok: %s %s, %d blobs, %s verified, %s\n", args[0],
				p.Description.Name, p.Description.Version, res.Blobs, bytesize.Format(res.Bytes), signed)
			if d := p.Description.Delta; d != nil {
				fmt.Fprintf(a.streams.Out, "delta of base %s: %d blobs omitted (the target registry must hold them):\n", d.Base, len(res.Omitted))
				for _, o := range res.Omitted {
					fmt.Fprintf(a.streams.Out, "  %s\n", o)
				}
			}
			return nil
		},
	}
	tf.add(cmd)
	return cmd
}
