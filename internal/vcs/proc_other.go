//go:build !unix

package vcs

import "os/exec"

// killGroup: elsewhere, cancellation kills the command only (the default).
func killGroup(cmd *exec.Cmd) {}
