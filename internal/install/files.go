package install

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/bundle"
)

// ExtractOptions configure [ExtractFiles].
type ExtractOptions struct {
	// Paths select files by target path: a file itself, or a directory
	// holding files. None means every file.
	Paths []string
	// Overwrite replaces files that already exist in the directory;
	// without it an existing file is an error and nothing is extracted.
	Overwrite bool
}

// ExtractedFile is one file written by [ExtractFiles].
type ExtractedFile struct {
	Target string        `json:"target"`
	Path   string        `json:"path"`
	Mode   string        `json:"mode"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
}

// ErrNoSuchFile: a path asked for names no carried file.
var ErrNoSuchFile = errors.New("no such file in the package")

// ExtractFiles writes the package's carried files (files: in skiff.yaml)
// under dir, which is created if needed. Every name is checked to stay
// inside dir (no absolute paths, no "..", no way out through a symbolic
// link already in dir), each file is checked against the digest and size
// the signed description lists, and its mode (0644, or 0755 for
// executables) is kept. It is all or nothing: files are written into a
// staging directory inside dir first and renamed into place only when
// every one of them is complete; an existing file is refused unless
// o.Overwrite (a directory in the way always is).
func ExtractFiles(ctx context.Context, p *Package, dir string, o ExtractOptions) ([]ExtractedFile, error) {
	want, err := selectFiles(p.Description.Files, o.Paths)
	if err != nil {
		return nil, err
	}
	if len(want) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("extracting files: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extracting files: %w", err)
	}
	defer root.Close()
	if !o.Overwrite {
		for t := range want {
			if _, err := root.Lstat(t); err == nil {
				return nil, fmt.Errorf("extracting %s: %s already exists: remove it, or pass --overwrite", t, filepath.Join(dir, t))
			} else if !errors.Is(err, fs.ErrNotExist) && !isNotDir(err) {
				return nil, fmt.Errorf("extracting %s: %w", t, err)
			}
		}
	}

	b := make([]byte, 6)
	rand.Read(b)
	stage := ".skiff-extract-" + hex.EncodeToString(b)
	if err := root.Mkdir(stage, 0o700); err != nil {
		return nil, fmt.Errorf("extracting files: creating the staging directory: %w", err)
	}
	defer root.RemoveAll(stage)

	rc, _, err := p.Archive.Layer(ctx, bundle.MediaTypeFiles, "")
	if err != nil {
		return nil, fmt.Errorf("extracting files: %w", err)
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, fmt.Errorf("extracting files: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var out []ExtractedFile
	staged := map[string]string{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("extracting files: reading the files layer: %w", err)
		}
		if err := checkName(h.Name); err != nil {
			return nil, err
		}
		f, ok := want[h.Name]
		if !ok {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("extracting %s: not a regular file in the archive: the archive is damaged; rebuild it", h.Name)
		}
		mode := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		tmp := path.Join(stage, fmt.Sprint(len(staged)))
		dg, n, err := writeStaged(root, tmp, tr, mode)
		if err != nil {
			return nil, fmt.Errorf("extracting %s: %w", h.Name, err)
		}
		if dg != f.Digest || n != f.Size {
			return nil, fmt.Errorf("extracting %s: %w: got %s (%d bytes), the package lists %s (%d bytes)", h.Name, bundle.ErrDigestMismatch, dg, n, f.Digest, f.Size)
		}
		staged[h.Name] = tmp
		out = append(out, ExtractedFile{Target: h.Name, Path: filepath.Join(dir, filepath.FromSlash(h.Name)), Mode: fmt.Sprintf("%04o", mode), Size: n, Digest: dg})
	}
	// Drain the layer so that its digest is checked.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("extracting files: %w", err)
	}
	for t := range want {
		if _, ok := staged[t]; !ok {
			return nil, fmt.Errorf("extracting %s: listed in the package but not in its files layer: the archive is damaged; rebuild it", t)
		}
	}
	slices.SortFunc(out, func(a, b ExtractedFile) int { return strings.Compare(a.Target, b.Target) })
	for _, f := range out {
		if d := path.Dir(f.Target); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("extracting %s: %w", f.Target, err)
			}
		}
		if st, err := root.Lstat(f.Target); err == nil && !st.Mode().IsRegular() {
			return nil, fmt.Errorf("extracting %s: %s exists and is not a regular file: remove it", f.Target, f.Path)
		}
		if err := root.Rename(staged[f.Target], f.Target); err != nil {
			return nil, fmt.Errorf("extracting %s: %w", f.Target, err)
		}
	}
	if d, err := root.Open("."); err == nil {
		d.Sync()
		d.Close()
	}
	return out, nil
}

// selectFiles returns the files named by paths (files, or directories of
// files), all of them when paths is empty.
func selectFiles(files []bundle.File, paths []string) (map[string]bundle.File, error) {
	out := map[string]bundle.File{}
	for _, f := range files {
		if err := checkName(f.Target); err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			out[f.Target] = f
		}
	}
	for _, p := range paths {
		p = strings.Trim(path.Clean(filepath.ToSlash(p)), "/")
		n := 0
		for _, f := range files {
			if f.Target == p || p == "." || strings.HasPrefix(f.Target, p+"/") {
				out[f.Target] = f
				n++
			}
		}
		if n == 0 {
			names := make([]string, len(files))
			for i, f := range files {
				names[i] = f.Target
			}
			return nil, fmt.Errorf("%w: %s (the package carries: %s)", ErrNoSuchFile, p, orNone(names))
		}
	}
	return out, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no files"
	}
	return strings.Join(s, ", ")
}

// checkName refuses a file name that could land outside the directory.
func checkName(name string) error {
	if name == "" || !filepath.IsLocal(name) || path.Clean(name) != name || strings.Contains(name, `\`) {
		return fmt.Errorf("extracting files: %w: file name %q could land outside the directory: refusing to extract", bundle.ErrUnsafePath, name)
	}
	return nil
}

func writeStaged(root *os.Root, name string, r io.Reader, mode fs.FileMode) (digest.Digest, int64, error) {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return "", 0, err
	}
	dg := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(f, dg.Hash()), r)
	if err == nil {
		err = f.Chmod(mode) // not narrowed by the umask
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return dg.Digest(), n, err
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
