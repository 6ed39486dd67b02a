package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the file under a registry's root that `registry serve`
// (exclusively) and `hub serve` (shared, one hold per replica) hold
// locked while they run, so that [GC] can refuse to sweep storage a
// running server (and its blob cache) still serves.
const LockFile = "skiff-registry.lock"

// HubMarkers are the files that make a directory a Skiff hub's root (its
// SQLite database, its audit head; a hub on PostgreSQL has only the
// latter). [GC] refuses such a root unless GCOptions.AllowHubRoot.
var HubMarkers = []string{"hub.db", "audit-head.json"}

// ErrServing: the registry's storage is in use by a running registry.
var ErrServing = errors.New("the registry is being served")

// ErrHubRoot: the directory is a Skiff hub's root, whose database
// records content a blob sweep does not read.
var ErrHubRoot = errors.New("the directory is a Skiff hub's root")

// RootLock is a held lock on a registry root.
type RootLock struct {
	f    *os.File
	path string
}

// lockRoot takes the lock on rootDir without waiting, exclusively unless
// shared; what names the taker in the error when the lock is held
// ("serve", "gc", "hub").
func lockRoot(rootDir, what string, shared bool) (*RootLock, error) {
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	path := filepath.Join(rootDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: lock file: %w", err)
	}
	if err := flock(f, shared); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder, isHub := lockHolder(string(b))
		var fix string
		switch {
		case what == "serve":
			fix = "one registry per --root: stop the other, or pass another --root"
		case what == "hub":
			fix = "stop it first, or serve the hub from another --root"
		case isHub:
			fix = "a hub serves this directory (a sweep would delete the blobs of uploads in progress, and the hub's database records content a sweep does not read): leave its storage to the hub, or stop every `skiff hub serve` on " + rootDir + " first (the sweep then still refuses a hub's directory without --allow-hub-root)"
		default:
			fix = "stop `skiff registry serve` first (garbage collection would sweep blobs the running registry still claims to hold), then sweep with `skiff registry gc --root " + rootDir + "`"
		}
		return nil, fmt.Errorf("%w: %s holds %s (%v): %s", ErrServing, holder, path, err, fix)
	}
	l := &RootLock{f: f, path: path}
	if !shared {
		l.Describe("skiff registry " + what)
	}
	return l, nil
}

// lockHolder names the process a lock file's content describes ("PID
// DESCRIPTION"), and whether it is a hub.
func lockHolder(content string) (string, bool) {
	fields := strings.Fields(content)
	if len(fields) == 0 {
		return "another process", false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return "another process", false
	}
	holder := "process " + strconv.Itoa(pid)
	desc := strings.Join(fields[1:], " ")
	if desc != "" {
		holder += " (" + desc + ")"
	}
	return holder, strings.HasPrefix(desc, "skiff hub")
}

// LockServed takes a shared hold on rootDir's lock for a server that
// serves its storage alongside others of its kind (the replicas of a hub
// sharing ROOT): [GC] and `registry serve` then refuse rootDir until
// every holder released it. owner describes the holder in their errors
// ("skiff hub serve").
func LockServed(rootDir, owner string) (*RootLock, error) {
	l, err := lockRoot(rootDir, "hub", true)
	if err != nil {
		return nil, err
	}
	l.Describe(owner)
	return l, nil
}

// Describe records the holder (this process's pid and desc) in the lock
// file, for the error of whoever is refused. With shared holders the
// last one to describe itself is named.
func (l *RootLock) Describe(desc string) {
	if l == nil || l.f == nil {
		return
	}
	line := strconv.Itoa(os.Getpid()) + " " + strings.Join(strings.Fields(desc), " ") + "\n"
	if err := l.f.Truncate(0); err == nil {
		_, _ = l.f.WriteAt([]byte(line), 0)
	}
}

// CheckNotServing returns an error wrapping [ErrServing] when a registry
// or hub serves rootDir (it holds the root's lock), so that a caller can
// refuse before changing anything it would only half finish.
func CheckNotServing(rootDir string) error {
	if _, err := os.Stat(filepath.Join(rootDir, LockFile)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := lockRoot(rootDir, "gc", false)
	if err != nil {
		return fmt.Errorf("garbage collection of %s: %w", rootDir, err)
	}
	l.Release()
	return nil
}

// CheckNotHub returns an error wrapping [ErrHubRoot] when rootDir holds
// one of [HubMarkers].
func CheckNotHub(rootDir string) error {
	for _, m := range HubMarkers {
		if _, err := os.Stat(filepath.Join(rootDir, m)); err == nil {
			return fmt.Errorf("garbage collection of %s: %w (it holds %s): the hub's database records packages (quarantined, pending, approved, blocked) that a blob sweep does not read, and the hub deletes no content itself; leave its storage alone, or, stopped, after `skiff hub check --root %s` passes and accepting that the sweep keeps only what the remaining manifests reference, pass --allow-hub-root",
				rootDir, ErrHubRoot, m, rootDir)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("garbage collection of %s: %w", rootDir, err)
		}
	}
	return nil
}

// Release drops the lock (for a shared hold, this holder's share).
func (l *RootLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the descriptor releases the flock
		l.f = nil
	}
}
