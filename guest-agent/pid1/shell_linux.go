package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// busybox gives the VM its shell and tools (build/guest copies Debian's
// busybox-static); its applet links are made on the first shell, off the
// boot path.
const busybox = "/bin/busybox"

var installApplets sync.Once

// StartShell implements control.Shells: argv, or a login shell, as root,
// reaped through the reaper.
func (p *Init) StartShell(argv, env []string, stdio *os.File, terminal bool) (<-chan int, error) {
	if _, err := os.Stat(busybox); err != nil {
		return nil, errors.New("this guest image has no shell (rebuild it with `make guest`)")
	}
	installApplets.Do(func() {
		cmd := exec.Command(busybox, "--install", "-s", "/bin")
		if ws, err := p.reaper.start(cmd); err != nil {
			p.log.Warn("busybox applets", "err", err)
		} else if s := <-ws; s.ExitStatus() != 0 {
			p.log.Warn("busybox applets", "status", describe(s))
		}
	})
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-l"}
	}
	os.MkdirAll("/root", 0o700)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, "/root"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio, stdio, stdio
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: terminal, Ctty: 0}
	ws, err := p.reaper.start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	code := make(chan int, 1)
	go func() {
		s := <-ws
		switch {
		case s.Exited():
			code <- s.ExitStatus()
		case s.Signaled():
			code <- 128 + int(s.Signal())
		default:
			code <- 255
		}
	}()
	p.log.Info("shell opened", "cmd", argv, "pid", cmd.Process.Pid)
	return code, nil
}
