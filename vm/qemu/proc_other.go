//go:build !linux && !windows

package qemu

import (
	"os"
	"os/exec"
)

func setProcAttr(cmd *exec.Cmd) {}

func bindToOwner(p *os.Process) {}
