package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/spec"
)

func init() { register(newInit) }

func newInit(a *app) *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Scaffold a skiff.yaml package spec",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(dir, spec.FileName)
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s already exists: edit it, or pass --force to overwrite it", path)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(path, spec.Scaffold(args[0]), 0o644); err != nil {
				return err
			}
			a.status("wrote %s: add your charts, manifests and images, then run `skiff lint`", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "C", ".", "directory to create skiff.yaml in")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing skiff.yaml")
	return cmd
}
