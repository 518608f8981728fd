//go:build unix

package vcs

import (
	"os/exec"
	"syscall"
)

// killGroup makes cancellation kill the command's whole process group, so
// that helpers it started (git-remote-https, ...) die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
