package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/sbom"
)

func init() { register(newSBOM) }

func newSBOM(a *app) *cobra.Command {
	var (
		tf    trustFlags
		image string
		out   string
		fmtF  string
	)
	cmd := &cobra.Command{
		Use:   "sbom ARCHIVE",
		Short: "Print or export the SBOMs a package carries (CycloneDX or SPDX)",
		Long: `Sbom verifies the archive's signature and prints the CycloneDX 1.5 JSON
SBOMs it carries, one per image platform plus one of the package's charts
and files (image "package"), one document after another; with --output-dir DIR it
writes each to a file in DIR instead.

--format spdx-json converts each to an SPDX 2.3 JSON document instead
(files named *.spdx.json). The archive records no build time, so the
documents' creation time is SOURCE_DATE_EPOCH when set, else
1970-01-01T00:00:00Z: the same archive gives the same documents.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fmtF != sbomCycloneDX && fmtF != sbomSPDX {
				return fmt.Errorf("--format %q is not known: use %s or %s", fmtF, sbomCycloneDX, sbomSPDX)
			}
			p, err := tf.open(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			docs, err := sbom.Read(cmd.Context(), p.Archive, p.Description, image)
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				if image != "" {
					return fmt.Errorf("the package has no SBOM of image %q: list its images with `skiff inspect %s`", image, args[0])
				}
				return fmt.Errorf("the package carries no SBOMs: it was built with --no-sbom; rebuild it without")
			}
			ext := ".cdx.json"
			if fmtF == sbomSPDX {
				ext = ".spdx.json"
				created, err := sourceDateEpoch()
				if err != nil {
					return err
				}
				for i := range docs {
					if docs[i].Data, err = sbom.ToSPDX(docs[i].Data, created); err != nil {
						return fmt.Errorf("converting the SBOM of %s: %w", docs[i].Name(), err)
					}
				}
			}
			if out == "" {
				for _, d := range docs {
					if _, err := a.streams.Out.Write(d.Data); err != nil {
						return err
					}
				}
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			for _, d := range docs {
				path := filepath.Join(out, fileName(d)+ext)
				if err := atomicfile.WriteFile(path, d.Data, 0o644); err != nil {
					return err
				}
				fmt.Fprintln(a.streams.Out, path)
			}
			return nil
		},
	}
	tf.add(cmd)
	cmd.Flags().StringVar(&image, "image", "", "only the SBOMs of this image reference (\"package\" for charts and files)")
	cmd.Flags().StringVar(&fmtF, "format", sbomCycloneDX, "document format: "+sbomCycloneDX+" or "+sbomSPDX+" (SPDX 2.3)")
	cmd.Flags().StringVar(&out, "output-dir", "", "write the SBOMs as files into this directory")
	migrateOutput(cmd, "--output-dir")
	return cmd
}

// SBOM document formats of --format.
const (
	sbomCycloneDX = "cyclonedx-json"
	sbomSPDX      = "spdx-json"
)

// sourceDateEpoch is the time SOURCE_DATE_EPOCH names, or the zero time.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970: %w", v, err)
	}
	return time.Unix(n, 0), nil
}

// fileName turns "docker.io/library/nginx:1.27" and "linux/arm64" into
// "docker.io_library_nginx_1.27@linux_arm64".
func fileName(d sbom.Document) string {
	r := strings.NewReplacer("/", "_", ":", "_", "\\", "_")
	name := r.Replace(d.Image)
	if d.Platform != "" {
		name += "@" + r.Replace(d.Platform)
	}
	return name
}
