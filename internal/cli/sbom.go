package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
	)
	cmd := &cobra.Command{
		Use:   "sbom ARCHIVE",
		Short: "Print or export the CycloneDX SBOMs a package carries",
		Long: `Sbom verifies the archive's signature and prints the CycloneDX 1.5 JSON
SBOMs it carries, one per image platform plus one of the package's charts
and files (image "package"), one document after another; with --output-dir DIR it
writes each to a file in DIR instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
				path := filepath.Join(out, fileName(d)+".cdx.json")
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
	cmd.Flags().StringVar(&out, "output-dir", "", "write the SBOMs as files into this directory")
	migrateOutput(cmd, "--output-dir")
	return cmd
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
