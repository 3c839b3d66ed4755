package qemu

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts QEMU in its own process group (a Ctrl-C meant for the
// host agent does not reach it; Stop shuts it down in order) and ends it if
// the host agent dies, so no VM outlives its owner.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// bindToOwner: Pdeathsig already ties QEMU to the host agent.
func bindToOwner(p *os.Process) {}
