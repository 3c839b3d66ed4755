//go:build unix

package testkit

import (
	"os"
	"os/exec"
	"syscall"
)

// StartShell starts argv (or /bin/sh) on tty in a session of its own, as
// the guest's PID 1 does for `berth shell`, and sends its exit code: the
// real process behind the shell API in tests that boot no VM.
func StartShell(argv, env []string, tty *os.File, terminal bool) (<-chan int, error) {
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: terminal}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	go func() { cmd.Wait(); ch <- cmd.ProcessState.ExitCode() }()
	return ch, nil
}
