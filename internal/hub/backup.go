package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// BackupFormat identifies a hub backup (the manifest's format field).
const BackupFormat = "skiff-hub-backup/v1"

// BackupManifestName is the last member of a backup: the manifest.
const BackupManifestName = "backup-manifest.json"

// maxBackupManifest bounds the manifest read from a backup.
const maxBackupManifest = 256 << 20

// ErrBadBackup reports a backup that is damaged, altered or unsafe;
// nothing of it was restored.
var ErrBadBackup = errors.New("invalid hub backup")

// ErrPostgres is returned by [Backup] for a hub whose metadata is in
// PostgreSQL.
var ErrPostgres = errors.New("the hub keeps its metadata in PostgreSQL")

// BackupManifest lists the files of a backup.
type BackupManifest struct {
	Format  string       `json:"format"`
	Created time.Time    `json:"created"`
	Files   []BackupFile `json:"files"`
}

// BackupFile is one file of a backup, by its path under the hub root.
type BackupFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BackupOptions configures [Backup].
type BackupOptions struct {
	// Root is the hub directory.
	Root string
	// DatabaseURL, when set, is the hub's PostgreSQL database: Backup
	// refuses (ErrPostgres); use pg_dump and copy Root/storage.
	DatabaseURL string
	// Now returns the time recorded; time.Now if nil.
	Now func() time.Time
}

// Backup writes a consistent backup of a hub directory (the hub may be
// running) to w as one tar: the SQLite database as a snapshot (VACUUM
// INTO), the audit head, every file of the OCI storage except unfinished
// uploads, and last the manifest with each file's size and sha256. The
// audit head is read before the snapshot and the storage after it, so
// every entry and digest the snapshot records is in the backup.
func Backup(ctx context.Context, w io.Writer, o BackupOptions) (*BackupManifest, error) {
	if o.DatabaseURL != "" {
		return nil, fmt.Errorf("%w: back it up with pg_dump, and copy %s and %s (see docs/hub.md)", ErrPostgres,
			filepath.Join(o.Root, "storage"), filepath.Join(o.Root, auditHeadFile))
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	dbPath := filepath.Join(o.Root, DatabaseFile)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("backing up %s: %w: is it a hub directory (--root)?", o.Root, err)
	}
	head, err := os.ReadFile(filepath.Join(o.Root, auditHeadFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	snap, err := snapshotSQLite(ctx, o.Root)
	if err != nil {
		return nil, err
	}
	defer os.Remove(snap)

	m := &BackupManifest{Format: BackupFormat, Created: now().UTC(), Files: []BackupFile{}}
	tw := tar.NewWriter(w)
	add := func(name string, size int64, r io.Reader) error {
		hs := sha256.New()
		if err := writeTarMember(tw, name, size, io.TeeReader(r, hs)); err != nil {
			return fmt.Errorf("backing up %s: %w", name, err)
		}
		m.Files = append(m.Files, BackupFile{Path: name, Size: size, SHA256: hex.EncodeToString(hs.Sum(nil))})
		return nil
	}
	if err := addFile(snap, DatabaseFile, add); err != nil {
		return nil, err
	}
	if head != nil {
		if err := add(auditHeadFile, int64(len(head)), bytes.NewReader(head)); err != nil {
			return nil, err
		}
	}
	storage := filepath.Join(o.Root, "storage")
	err = filepath.WalkDir(storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != storage {
				return nil // removed meanwhile (an upload finished)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "_uploads" {
				return filepath.SkipDir // unfinished uploads
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(o.Root, p)
		if err != nil {
			return err
		}
		return addFile(p, filepath.ToSlash(rel), add)
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backing up the storage: %w", err)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeTarMember(tw, BackupManifestName, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return nil, err
	}
	return m, tw.Close()
}

// addFile adds a file. Small files (tag links, which may change) are
// read whole first so that size and content agree; large ones are blob
// data, which never changes.
func addFile(p, name string, add func(string, int64, io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() <= 1<<20 {
		b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
		if err != nil {
			return err
		}
		return add(name, int64(len(b)), bytes.NewReader(b))
	}
	return add(name, st.Size(), f)
}

// RestoreOptions configures [Restore].
type RestoreOptions struct {
	// Root is the hub directory to create; it must not exist or be
	// empty.
	Root string
}

// Restore restores a backup written by [Backup] into a new hub
// directory. It writes into ROOT.tmp, checks every file against the
// manifest (size and sha256, nothing missing, nothing extra), and only
// then renames ROOT.tmp to ROOT: a damaged or altered backup leaves
// nothing behind (ErrBadBackup). Member names are checked: only
// hub.db, audit-head.json and files under storage/ are accepted,
// without "..", absolute paths, links or other special files.
func Restore(ctx context.Context, r io.Reader, o RestoreOptions) (*BackupManifest, error) {
	if o.Root == "" {
		return nil, errors.New("restore: the target directory is required: pass --root DIR")
	}
	root := filepath.Clean(o.Root)
	if ents, err := os.ReadDir(root); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty: restore into a new directory", root)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	tmp := root + ".tmp"
	if _, err := os.Lstat(tmp); err == nil {
		return nil, fmt.Errorf("restore: %s exists (an interrupted restore?): remove it and try again", tmp)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	m, err := restoreInto(ctx, r, tmp)
	if err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, root); err != nil {
		// An existing empty directory: replace it.
		if rerr := os.Remove(root); rerr != nil {
			return nil, fmt.Errorf("restore: moving %s to %s: %w", tmp, root, err)
		}
		if err := os.Rename(tmp, root); err != nil {
			return nil, fmt.Errorf("restore: moving %s to %s: %w", tmp, root, err)
		}
	}
	done = true
	return m, nil
}

func restoreInto(ctx context.Context, r io.Reader, dir string) (*BackupManifest, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadBackup}, args...)...)
	}
	type got struct {
		size int64
		sum  string
	}
	files := map[string]got{}
	var m *BackupManifest
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("reading: %v: the backup is truncated or damaged", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m != nil {
			return nil, bad("member %q follows the manifest: the backup was altered", hdr.Name)
		}
		if hdr.Name == BackupManifestName && hdr.Typeflag == tar.TypeReg {
			if hdr.Size > maxBackupManifest {
				return nil, bad("the manifest is too large")
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, bad("reading the manifest: %v", err)
			}
			m = &BackupManifest{}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(m); err != nil {
				return nil, bad("decoding the manifest: %v", err)
			}
			if m.Format != BackupFormat {
				return nil, bad("format %q, want %s", m.Format, BackupFormat)
			}
			continue
		}
		if err := safeBackupName(hdr.Name); err != nil {
			return nil, bad("member %q: %v", hdr.Name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, bad("member %q is not a regular file", hdr.Name)
		}
		if _, dup := files[hdr.Name]; dup {
			return nil, bad("member %q appears twice", hdr.Name)
		}
		sum, err := writeRestored(filepath.Join(dir, filepath.FromSlash(hdr.Name)), tr)
		if err != nil {
			return nil, fmt.Errorf("restoring %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = got{hdr.Size, sum}
	}
	if m == nil {
		return nil, bad("no %s: the backup is truncated, or not a file written by `skiff hub backup`", BackupManifestName)
	}
	listed := map[string]bool{}
	for _, f := range m.Files {
		g, ok := files[f.Path]
		switch {
		case !ok:
			return nil, bad("%s is listed but missing", f.Path)
		case g.size != f.Size || g.sum != f.SHA256:
			return nil, bad("%s has sha256 %s (%d bytes), the manifest says %s (%d bytes): the backup was altered or damaged", f.Path, g.sum, g.size, f.SHA256, f.Size)
		}
		listed[f.Path] = true
	}
	for p := range files {
		if !listed[p] {
			return nil, bad("member %q is not listed in the manifest: the backup was altered", p)
		}
	}
	if _, ok := files[DatabaseFile]; !ok {
		return nil, bad("it holds no %s", DatabaseFile)
	}
	return m, nil
}

// safeBackupName accepts hub.db, audit-head.json and clean relative
// paths under storage/.
func safeBackupName(name string) error {
	switch {
	case name == DatabaseFile || name == auditHeadFile:
		return nil
	case strings.ContainsAny(name, "\\\x00") || path.IsAbs(name) || path.Clean(name) != name:
		return errors.New("unsafe path")
	case !strings.HasPrefix(name, "storage/"):
		return errors.New("not a hub file (hub.db, audit-head.json, storage/...)")
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return errors.New("unsafe path")
		}
	}
	return nil
}

// writeRestored writes r to p (creating parents) with fsync and returns
// its sha256.
func writeRestored(p string, r io.Reader) (string, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	hs := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, hs), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	return hex.EncodeToString(hs.Sum(nil)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
