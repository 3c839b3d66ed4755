//go:build !windows

package desktop

import (
	"os/exec"
	"syscall"
)

// detach runs cmd in its own session, so it outlives the window and a
// terminal's hangup does not reach it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
