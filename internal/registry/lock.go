package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the file under a registry's root that `registry serve` holds
// locked while it runs, so that [GC] can refuse to sweep storage the
// running registry (and its blob cache) still serves.
const LockFile = "skiff-registry.lock"

// ErrServing: the registry's storage is in use by a running registry.
var ErrServing = errors.New("the registry is being served")

// rootLock is a held lock on a registry root.
type rootLock struct{ f *os.File }

// lockRoot takes the lock on rootDir without waiting; what names the
// taker in the error when the lock is held ("serve", "gc").
func lockRoot(rootDir, what string) (*rootLock, error) {
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	path := filepath.Join(rootDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: lock file: %w", err)
	}
	if err := flock(f); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			holder = "process " + strconv.Itoa(pid)
		}
		fix := "stop `skiff registry serve` first (garbage collection would sweep blobs the running registry still claims to hold), then sweep with `skiff registry gc --root " + rootDir + "`"
		if what == "serve" {
			fix = "one registry per --root: stop the other, or pass another --root"
		}
		return nil, fmt.Errorf("%w: %s holds %s (%v): %s", ErrServing, holder, path, err, fix)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &rootLock{f: f}, nil
}

// CheckNotServing returns an error wrapping [ErrServing] when a registry
// serves rootDir (it holds the root's lock), so that a caller can refuse
// before changing anything it would only half finish.
func CheckNotServing(rootDir string) error {
	if _, err := os.Stat(filepath.Join(rootDir, LockFile)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := lockRoot(rootDir, "gc")
	if err != nil {
		return fmt.Errorf("garbage collection of %s: %w", rootDir, err)
	}
	l.release()
	return nil
}

// release drops the lock.
func (l *rootLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the descriptor releases the flock
		l.f = nil
	}
}
