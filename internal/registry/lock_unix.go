//go:build unix

package registry

import (
	"os"
	"syscall"
)

// flock locks f (exclusively unless shared), failing at once when
// another holds a conflicting lock.
func flock(f *os.File, shared bool) error {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	return syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
}
