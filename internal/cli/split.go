package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/split"
)

func init() { register(newSplit) }

func newSplit(a *app) *cobra.Command {
	var (
		size string
		o    split.Options
	)
	cmd := &cobra.Command{
		Use:   "split ARCHIVE --size 4G [--parity N]",
		Short: "Cut an archive into parts for small media, with optional parity",
		Long: `Split cuts the archive into parts of --size bytes beside it (ARCHIVE.part-001,
…) and writes ARCHIVE.parts.json, which names every part with its sha256.
With --parity N it adds N Reed–Solomon parity parts (ARCHIVE.parity-001, …),
each as large as one part: any N parts may then be lost or damaged and
skiff join rebuilds them. Carry all the files, then run
skiff join ARCHIVE.parts.json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.PartSize, err = split.ParseSize(size); err != nil {
				return err
			}
			m, err := split.Split(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "%s: %s in %d parts of at most %s, %d parity parts; join with: skiff join %s\n",
				args[0], bytesize.Format(m.Archive.Size), len(m.Data()), bytesize.Format(m.PartSize), m.Parity, split.ManifestPath(args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&size, "size", "", "part size, e.g. 4G, 700M (required)")
	cmd.Flags().IntVar(&o.Parity, "parity", 0, "parity parts to add: that many parts may be lost and rebuilt")
	_ = cmd.MarkFlagRequired("size")
	return cmd
}
