package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/install"
)

func init() { register(newFiles) }

func newFiles(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "files",
		Short: "List or extract the files a package carries",
		Args:  cobra.NoArgs,
		RunE:  unknownSubcommand,
	}
	cmd.AddCommand(newFilesList(a), newFilesExtract(a))
	return cmd
}

func newFilesList(a *app) *cobra.Command {
	var (
		tf     trustFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list ARCHIVE",
		Short: "List the carried files (files: in skiff.yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := tf.open(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			if output == "json" {
				return writeJSON(a, p.Description.Files)
			}
			w := a.table()
			fmt.Fprintln(w, "PATH\tSIZE\tDIGEST")
			for _, f := range p.Description.Files {
				fmt.Fprintf(w, "%s\t%s\t%s\n", f.Target, bytesize.Format(f.Size), f.Digest)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	tf.add(cmd)
	return cmd
}

func newFilesExtract(a *app) *cobra.Command {
	var (
		tf     trustFlags
		o      install.ExtractOptions
		dir    string
		output string
	)
	cmd := &cobra.Command{
		Use:   "extract ARCHIVE [PATH...] -C DIR",
		Short: "Write the carried files (all, or the PATHs given) into a directory",
		Long: `Extract writes the package's carried files into DIR (created if needed),
after checking the package's signature: all of them, or the files and
directories named. Names are checked to stay inside DIR, each file is
checked against the digest the signed package lists, modes (0644, 0755 for
executables) are kept, and it is all or nothing: files are staged inside
DIR and renamed into place once all are complete. Existing files are
refused unless --overwrite.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("no directory: pass -C DIR")
			}
			p, err := tf.open(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			defer p.Close()
			o.Paths = args[1:]
			files, err := install.ExtractFiles(cmd.Context(), p, dir, o)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a, files)
			}
			for _, f := range files {
				fmt.Fprintf(a.streams.Out, "%s %s %s\n", f.Mode, bytesize.Format(f.Size), f.Path)
			}
			if len(files) == 0 {
				fmt.Fprintln(a.streams.Out, "the package carries no files")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "directory", "C", "", "directory to write the files into (required)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace files that already exist")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	tf.add(cmd)
	return cmd
}

// writeJSON prints v as indented JSON on stdout.
func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.streams.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// unknownSubcommand is the RunE of a command group: a group run without a
// known subcommand is an error (exit code 1), not help and success.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q: run %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return fmt.Errorf("%s needs a subcommand: run %s --help", cmd.CommandPath(), cmd.CommandPath())
}
