//go:build unix

package install

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd start its own process group and, when its context
// ends, kills the whole group: what the command started dies with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
