//go:build !windows

package cli

import (
	"os/exec"
	"syscall"
)

// detach makes cmd outlive this process and its terminal: a new session.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
