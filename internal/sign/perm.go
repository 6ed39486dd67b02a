package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// ErrInsecurePermissions: a private key others may read, or a trust
// directory or trusted key others may write. Like ssh, Skiff refuses
// them: the error names the chmod that fixes it.
var ErrInsecurePermissions = errors.New("insecure permissions")

// CheckPrivateFile refuses a private key file (signing key, age identity)
// that its group or others may read or write (any bit of 077).
func CheckPrivateFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil || runtime.GOOS == "windows" {
		return nil // reading it reports a missing file; Windows has no modes
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%w: private key %s has mode %04o, so other users may read it: run `chmod 600 %s` (and consider the key exposed)", ErrInsecurePermissions, path, m, path)
	}
	return nil
}

// checkNotWorldWritable refuses a trust directory or trusted key that
// anyone may write: they could add a key of their own, or replace one.
func checkNotWorldWritable(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	m := fi.Mode()
	if m.Perm()&0o002 == 0 {
		return nil
	}
	what, fix := "trusted key", "chmod o-w "+path
	if m.IsDir() {
		what = "trust directory"
		if m&fs.ModeSticky != 0 {
			what = "trust directory (sticky, still writable by anyone)"
		}
	}
	return fmt.Errorf("%w: %s %s has mode %04o, so any user may add or replace trusted keys: run `%s`", ErrInsecurePermissions, what, path, m.Perm(), fix)
}
