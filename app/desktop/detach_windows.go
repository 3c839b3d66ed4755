package desktop

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// detach runs cmd in its own process group (a Ctrl-C meant for the window
// does not reach it) with a hidden console: the console programs it starts
// (wsl.exe, qemu) inherit that console instead of each opening a window.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_NO_WINDOW,
		HideWindow:    true,
	}
}
