package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/hub"
)

func init() {
	registerHub(newHubBackup)
	registerHub(newHubRestore)
	registerHub(newHubCheck)
}

func newHubBackup(a *app) *cobra.Command {
	var (
		d   dbFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "backup --root DIR --output-file backup.tar",
		Short: "Back up a hub directory (SQLite snapshot, storage, audit head) into one tar",
		Long: `Backup writes a consistent backup of the hub directory, which may be in
use: a snapshot of the SQLite database (VACUUM INTO), the audit head and
every file of the OCI storage, with a manifest of each file's sha256.
Restore it with ` + "`skiff hub restore`" + `. A hub whose metadata is in PostgreSQL
is refused: back it up with pg_dump and copy DIR/storage and
DIR/audit-head.json (see docs/hub.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !d.direct() {
				return fmt.Errorf("no hub directory: pass --root DIR")
			}
			if out == "" {
				return fmt.Errorf("no output file: pass --output-file backup.tar")
			}
			f, err := atomicfile.Create(out, 0o600)
			if err != nil {
				return err
			}
			defer f.Abort()
			m, err := hub.Backup(cmd.Context(), f, hub.BackupOptions{Root: d.root, DatabaseURL: d.databaseURL})
			if err != nil {
				return err
			}
			if err := f.Commit(); err != nil {
				return err
			}
			var size int64
			for _, bf := range m.Files {
				size += bf.Size
			}
			a.status("backed up %d files (%d bytes) to %s", len(m.Files), size, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "output-file", "", "the backup file to write")
	migrateOutput(cmd, "--output-file")
	d.add(cmd)
	return cmd
}

func newHubRestore(a *app) *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "restore BACKUP.tar --root DIR",
		Short: "Restore a hub backup into a new directory",
		Long: `Restore unpacks a backup (skiff hub backup) into DIR, which must not exist
or be empty. It writes DIR.tmp, checks every file's sha256 against the
backup's manifest and refuses unsafe paths, and only then renames
DIR.tmp to DIR: a damaged backup leaves nothing behind. Then run
` + "`skiff hub check --root DIR`" + ` and start the hub on DIR.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return fmt.Errorf("no target directory: pass --root DIR")
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := hub.Restore(cmd.Context(), f, hub.RestoreOptions{Root: root})
			if err != nil {
				return err
			}
			a.status("restored %d files into %s", len(m.Files), root)
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "the hub directory to create")
	return cmd
}

func newHubCheck(a *app) *cobra.Command {
	var (
		d  dbFlags
		sf storageFlags
	)
	cmd := &cobra.Command{
		Use:   "check --root DIR",
		Short: "Check a hub directory: stored content, metadata and the audit chain agree",
		Long: `Check verifies that every digest recorded for a pending, approved or
blocked package is in the blob storage with the right sha256 and linked
into its repository, that approved versions are tagged, that no
approval or digest row belongs to a missing package, and that the audit
chain verifies. It exits 1 on any problem. A hub storing its content in
S3 is checked with the storage flags it serves with (--storage s3
--s3-bucket ..., credentials in AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !d.direct() {
				return fmt.Errorf("no hub directory: pass --root DIR")
			}
			storage, err := sf.storage()
			if err != nil {
				return err
			}
			rep, err := hub.Check(cmd.Context(), hub.CheckOptions{Root: d.root, DatabaseURL: d.databaseURL, Storage: storage})
			if rep == nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Fprintf(a.streams.Out, "problem: %s\n", p)
			}
			if !rep.OK {
				return &ExitError{Code: 1, Err: fmt.Errorf("%w: %d problem(s)", hub.ErrInconsistent, len(rep.Problems))}
			}
			fmt.Fprintf(a.streams.Out, "ok: %d packages, %d blobs verified, %d audit entries\n", rep.Packages, rep.Blobs, rep.Audit.Entries)
			return nil
		},
	}
	d.add(cmd)
	sf.add(cmd)
	return cmd
}
