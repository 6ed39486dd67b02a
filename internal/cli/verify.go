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
	var (
		tf  trustFlags
		out *formatFlag
	)
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
			r := verifyResult{
				Archive: args[0], Name: p.Description.Name, Version: p.Description.Version, Root: p.Root.Digest.String(),
				Blobs: res.Blobs, Bytes: res.Bytes, SignatureChecked: !opts.SkipSignature, SignedBy: p.SignedBy,
			}
			if d := p.Description.Delta; d != nil {
				r.DeltaBase = d.Base
				for _, o := range res.Omitted {
					r.Omitted = append(r.Omitted, o.String())
				}
			}
			return a.print(out, r, func() error {
				signed := "signature NOT checked"
				if r.SignatureChecked {
					signed = "signed by " + strings.Join(r.SignedBy, ", ")
				}
				fmt.Fprintf(a.streams.Out, "%s: ok: %s %s, %d blobs, %s verified, %s\n", r.Archive,
					r.Name, r.Version, r.Blobs, bytesize.Format(r.Bytes), signed)
				if r.DeltaBase != "" {
					fmt.Fprintf(a.streams.Out, "delta of base %s: %d blobs omitted (the target registry must hold them):\n", r.DeltaBase, len(r.Omitted))
					for _, o := range r.Omitted {
						fmt.Fprintf(a.streams.Out, "  %s\n", o)
					}
				}
				return nil
			})
		},
	}
	out = addFormat(cmd, "")
	tf.add(cmd)
	return cmd
}

// verifyResult is what verify reports (-o json|yaml).
type verifyResult struct {
	Archive          string   `json:"archive"`
	Name             string   `json:"name"`
	Version          string   `json:"version"`
	Root             string   `json:"root"`
	Blobs            int      `json:"blobs"`
	Bytes            int64    `json:"bytes"`
	SignatureChecked bool     `json:"signatureChecked"`
	SignedBy         []string `json:"signedBy,omitempty"`
	DeltaBase        string   `json:"deltaBase,omitempty"`
	Omitted          []string `json:"omitted,omitempty"`
}
