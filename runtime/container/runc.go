//go:build linux

package container

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	// Without it libcontainer cannot write device cgroup rules.
	_ "github.com/opencontainers/cgroups/devices"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// createLibcontainer creates the libcontainer container for one run,
// clearing state a crash may have left under the same ID.
func createLibcontainer(root, id string, cfg *configs.Config) (*libcontainer.Container, error) {
	lc, err := libcontainer.Create(root, id, cfg)
	if errors.Is(err, libcontainer.ErrExist) {
		if old, lerr := libcontainer.Load(root, id); lerr == nil {
			old.Signal(unix.SIGKILL)
			old.Destroy()
		} else {
			os.RemoveAll(root + "/" + id)
		}
		lc, err = libcontainer.Create(root, id, cfg)
	}
	return lc, err
}

// cgroupManager returns a manager for the container's cgroup, used for the
// OOM count, the process list and freezing.
func cgroupManager(cfg *configs.Config) (cgroups.Manager, error) {
	return manager.New(cfg.Cgroups)
}

// killLeftover kills what survives of a container after an agent crash and
// removes its libcontainer state. It returns the exit code to record: 137
// when processes had to be killed, 255 when nothing was left to ask.
func killLeftover(root, id string, log *slog.Logger) int {
	lc, err := libcontainer.Load(root, id)
	if err != nil {
		return 255
	}
	code := 255
	if st, err := lc.Status(); err == nil && st != libcontainer.Stopped {
		code = 137
		if st == libcontainer.Paused {
			lc.Resume()
		}
		if err := lc.Signal(unix.SIGKILL); err != nil {
			log.Warn("kill leftover container", "container", id, "err", err)
		}
		if s, err := lc.State(); err == nil {
			waitGone(s.InitProcessPid, 10*time.Second)
		}
	}
	if err := lc.Destroy(); err != nil {
		log.Warn("destroy leftover container", "container", id, "err", err)
	}
	return code
}

// waitGone polls until pid no longer exists (it is not our child after an
// agent restart, so it cannot be waited for).
func waitGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for pid > 0 && time.Now().Before(deadline) {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cleanRuntimeRoot destroys libcontainer state that no container owns.
func (m *Manager) cleanRuntimeRoot() {
	entries, _ := os.ReadDir(m.cfg.RuntimeRoot)
	for _, e := range entries {
		if _, ok := m.byID[e.Name()]; ok || !e.IsDir() {
			continue
		}
		killLeftover(m.cfg.RuntimeRoot, e.Name(), m.log)
		os.RemoveAll(m.cfg.RuntimeRoot + "/" + e.Name())
	}
}

// exitStatus turns a wait status into the shell-style code docker reports:
// the exit status, or 128+signal for a process killed by a signal.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 255
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.ExitCode()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// startFailure classifies an error from starting a process the way dockerd
// does: 127 for a missing executable, 126 when it cannot be executed. Those
// are the user's mistake (400); anything else is the engine's (500).
func startFailure(err error) (int, error) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127, errdefs.InvalidArgument("failed to create task for container: %v: unknown", err)
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126, errdefs.InvalidArgument("failed to create task for container: %v: unknown", err)
	}
	return 128, fmt.Errorf("failed to create task for container: %w", err)
}

// recvConsole receives the pty master that libcontainer's init sends over
// the console socket.
func recvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receive console: %w", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return nil, fmt.Errorf("receive console: bad control message (%v)", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return nil, fmt.Errorf("receive console: no descriptor (%v)", err)
		}
		return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
	}
}

// resizeConsole sets a pty's window size. It goes through SyscallConn, not
// Fd, which would switch the pty to blocking mode under the reader copying
// its output and race with its Close.
func resizeConsole(f *os.File, height, width uint) error {
	if f == nil {
		return errdefs.Conflict("no TTY attached: cannot resize")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(height), Col: uint16(width)})
	}); err != nil {
		return err
	}
	return ioErr
}

// consolePair makes the socket pair libcontainer sends the pty master over.
func consolePair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[1]), "console-parent"), os.NewFile(uintptr(fds[0]), "console-child"), nil
}

// rlimits converts OCI rlimits for libcontainer.
func rlimits(in []specs.POSIXRlimit) ([]configs.Rlimit, error) {
	var out []configs.Rlimit
	for _, r := range in {
		typ, ok := rlimitNumbers[r.Type]
		if !ok {
			return nil, errdefs.InvalidArgument("invalid ulimit type: %s", r.Type)
		}
		out = append(out, configs.Rlimit{Type: typ, Hard: r.Hard, Soft: r.Soft})
	}
	return out, nil
}

var rlimitNumbers = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// waitExeced waits (briefly) until the container's init has replaced
// itself with the container's command. libcontainer's Exec returns when
// the init was let go, before its execve: a signal sent in between meets
// the Go runtime of `berth-agent init`, which as PID 1 cannot die of it
// and exits with status 2, where dockerd's container (whose start returns
// later) would have ignored it or run its handler. With --init, the init
// (the engine's binary again) is ready to forward signals once it has
// started the command: that is waited for too.
func waitExeced(pid int, withInit bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(dir + "/cmdline")
		if err != nil {
			return // gone: the monitor sees why
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		execed := len(args) != 2 || args[1] != "init"
		if execed && withInit {
			children, err := os.ReadFile(dir + "/task/" + strconv.Itoa(pid) + "/children")
			execed = err != nil || len(strings.TrimSpace(string(children))) > 0
		}
		if execed {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}
