// Package atomicfile writes files so that a reader sees either the old
// content or the new, never a partial write: data goes to a temporary file
// in the same directory, is synced, and is renamed into place.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// File is a temporary file that replaces its destination on [File.Commit].
// Write (or WriteAt) through the embedded *os.File, then call Commit, or
// Abort to discard it; do not Close it yourself. Abort after Commit does
// nothing, so
//
//	f, err := atomicfile.Create(path, 0o644)
//	...
//	defer f.Abort()
//
// is the usual pattern.
type File struct {
	*os.File
	path string
	mode os.FileMode
	done bool
}

// Create starts writing path: it creates a temporary file beside it (so
// the final rename stays on one file system). The file gets mode on
// Commit, regardless of the umask.
func Create(path string, mode os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &File{File: f, path: path, mode: mode}, nil
}

// Resume is [Create] with a fixed temporary file, tmp (a name in path's
// directory), opened for reading and writing and not truncated if it
// exists: a writer interrupted before Commit may leave it with [File.Keep]
// and continue it on its next run. The caller proves it owns an existing
// tmp before calling Resume.
func Resume(path, tmp string, mode os.FileMode) (*File, error) {
	if filepath.Base(tmp) != tmp || tmp == filepath.Base(path) {
		return nil, errors.New("atomicfile: the temporary file " + tmp + " must be another name in the directory of " + path)
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(path), tmp), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &File{File: f, path: path, mode: mode}, nil
}

// Keep closes the temporary file and leaves it in place (see [Resume]).
// It does nothing after Commit or Abort.
func (f *File) Keep() {
	if f.done {
		return
	}
	f.done = true
	_ = f.Close()
}

// Commit sets the file's mode, syncs and closes it, renames it over the
// destination and syncs the directory. On error the temporary file is
// removed and the destination is left as it was.
func (f *File) Commit() error { return f.finish(os.Rename) }

// commitNew is Commit that refuses to replace an existing destination:
// a hard link fails if the destination exists, so there is no window in
// which another writer's file could be replaced.
func (f *File) commitNew() error {
	return f.finish(func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		_ = os.Remove(tmp)
		return nil
	})
}

func (f *File) finish(place func(tmp, path string) error) error {
	if f.done {
		return errors.New("atomicfile: " + f.path + " was already committed or aborted")
	}
	tmp := f.Name()
	err := f.Chmod(f.mode)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp, f.path)
	}
	f.done = true
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// Abort closes and removes the temporary file, leaving the destination
// alone. It does nothing after Commit or a previous Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// WriteFile writes data to path atomically with the given mode, replacing
// any existing file. On error the old file, if any, is left intact and no
// temporary file remains.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, (*File).Commit)
}

// WriteNew is [WriteFile] that never replaces a file: if path exists it
// returns an error wrapping [io/fs.ErrExist] and leaves the file alone.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, (*File).commitNew)
}

func write(path string, data []byte, mode os.FileMode, commit func(*File) error) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return commit(f)
}

// syncDir makes a rename in dir durable. Errors are ignored: some file
// systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
