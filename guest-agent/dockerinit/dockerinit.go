//go:build linux

// Package dockerinit is the init process of `docker run --init` (compose's
// `init: true`): it runs the container's command as its child, forwards
// the signals it gets to it, reaps every zombie that is reparented to it,
// and exits with the command's status, as dockerd's docker-init (tini)
// does. It is berth-agent itself, bind-mounted read-only at
// /sbin/docker-init and dispatched on that name, so the engine ships no
// second binary.
package dockerinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Name is the base name the agent is run under as the init.
const Name = "docker-init"

// Main runs args (after an optional "--") as the child and returns the
// status to exit with: the child's, 128+N if a signal N killed it, 127 or
// 126 if it could not be executed (as tini).
func Main(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: no command given")
		return 1
	}
	// Every signal is caught (a PID 1 ignores those it has no handler
	// for), so a caught one reverts to its default in the child at exec.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The child leads its own process group and, on a terminal, owns it
	// (so ^C reaches it, as with tini).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, 0
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: exec %s: %v\n", args[0], err)
		switch {
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
			return 127
		default:
			return 126
		}
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		switch sig {
		case unix.SIGCHLD:
			if code, done := reap(child); done {
				return code
			}
		case unix.SIGURG:
			// Go's runtime preempts its own threads with SIGURG: not
			// forwarded, as it cannot be told from one sent to us.
		default:
			if err := unix.Kill(child, sig.(syscall.Signal)); err != nil && !errors.Is(err, unix.ESRCH) {
				fmt.Fprintf(os.Stderr, "docker-init: forward %v: %v\n", sig, err)
			}
		}
	}
	return 1 // not reached: sigs is never closed
}

// reap collects every exited child (orphans reparented to PID 1 included)
// and reports the main child's exit status once it has exited.
func reap(child int) (int, bool) {
	code, done := 0, false
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == child {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}
