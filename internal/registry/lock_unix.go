//go:build unix

package registry

import (
	"os"
	"syscall"
)

// flock locks f exclusively, failing at once when another holds it.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
