package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newInspect) }

func newInspect(a *app) *cobra.Command {
	var (
		output string
		rf     remoteFlags
		hf     hubFlags
	)
	cmd := &cobra.Command{
		Use:   "inspect ARCHIVE | oci://REGISTRY/REPOSITORY:TAG | HUB/OWNER/NAME:VERSION",
		Short: "Show what a package archive holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			remote, err := rf.options()
			if err != nil {
				return err
			}
			path, cleanup, err := ociArchive(cmd.Context(), a, args[0], remote, &hf)
			if err != nil {
				return err
			}
			defer cleanup()
			p, err := install.Open(cmd.Context(), path, bundle.OpenOptions{SkipSignature: true}) // it shows the signatures, does not judge them
			if err != nil {
				return err
			}
			defer p.Close()
			sigs, err := p.Archive.Signatures(cmd.Context())
			if err != nil {
				return err
			}
			d := p.Description
			cosignN, referrersN := install.Material(p.Archive.Images())
			if output == "json" {
				enc := json.NewEncoder(a.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Root        string              `json:"root"`
					Signatures  int                 `json:"signatures"`
					Cosign      int                 `json:"imageCosignManifests"`
					Referrers   int                 `json:"imageReferrers"`
					Description *bundle.Description `json:"package"`
				}{p.Root.Digest.String(), len(sigs), cosignN, referrersN, d})
			}
			w := a.table()
			fmt.Fprintf(w, "Package:\t%s %s\n", d.Name, d.Version)
			if d.Description != "" {
				fmt.Fprintf(w, "Description:\t%s\n", d.Description)
			}
			fmt.Fprintf(w, "Root:\t%s\n", p.Root.Digest)
			fmt.Fprintf(w, "Platforms:\t%v\n", d.Platforms)
			fmt.Fprintf(w, "Signatures:\t%d\n", len(sigs))
			fmt.Fprintf(w, "Image material:\t%d cosign signature/attestation manifests, %d OCI referrers\n", cosignN, referrersN)
			fmt.Fprintf(w, "Built by:\t%s\n", d.CreatedBy)
			if d.Delta != nil {
				fmt.Fprintf(w, "Delta:\tomits %d blobs of base %s\n", len(d.Delta.Omitted), d.Delta.Base)
			}
			w.Flush()
			if len(d.Charts) > 0 {
				fmt.Fprintln(a.streams.Out, "\nCHARTS")
				w = a.table()
				fmt.Fprintln(w, "NAME\tCHART\tVERSION\tNAMESPACE\tSIZE\tIMAGES")
				for _, c := range d.Charts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", c.Name, c.Chart, c.Version, orDash(c.Namespace), bytesize.Format(c.Size), len(c.Images))
				}
				w.Flush()
			}
			if len(d.Manifests) > 0 {
				fmt.Fprintln(a.streams.Out, "\nMANIFESTS")
				w = a.table()
				fmt.Fprintln(w, "NAME\tNAMESPACE\tSIZE\tIMAGES")
				for _, m := range d.Manifests {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", m.Name, orDash(m.Namespace), bytesize.Format(m.Size), len(m.Images))
				}
				w.Flush()
			}
			if steps := install.LifecycleSteps(d); len(steps) > 0 {
				fmt.Fprintln(a.streams.Out, "\nLIFECYCLE")
				printLifecycle(a.streams.Out, steps)
			}
			if len(d.Files) > 0 {
				fmt.Fprintln(a.streams.Out, "\nFILES")
				for _, f := range d.Files {
					fmt.Fprintf(a.streams.Out, "  %s (%s)\n", f.Target, bytesize.Format(f.Size))
				}
			}
			fmt.Fprintln(a.streams.Out, "\nIMAGES")
			w = a.table()
			fmt.Fprintln(w, "REFERENCE\tDIGEST\tPLATFORMS")
			for _, im := range d.Images {
				fmt.Fprintf(w, "%s\t%s\t%v\n", im.Ref, im.Digest.Encoded()[:12], im.Platforms)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	rf.add(cmd)
	hf.add(cmd)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printLifecycle lists lifecycle steps as a table; commands are marked as
// running on this machine.
func printLifecycle(out io.Writer, steps []install.PlannedStep) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PHASE\tSTEP\tKIND\tTIMEOUT\tDOES")
	for _, st := range steps {
		what := st.What
		if st.Kind == "run" {
			what += " (on this machine: needs --allow-commands)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", st.Phase, st.Name, st.Kind, orDash(st.Timeout), what)
	}
	w.Flush()
}
