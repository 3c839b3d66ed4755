package pid1

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/guest-agent/control"
)

// reaper collects every child that exits, including orphans the kernel
// reparents to PID 1, and hands the status of the children PID 1 started
// itself to whoever waits for them.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
}

func newReaper() *reaper { return &reaper{waiters: map[int]chan unix.WaitStatus{}} }

func (r *reaper) loop() {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, unix.SIGCHLD)
	r.reapAll() // children that exited before Notify
	for range ch {
		r.reapAll()
	}
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if ch != nil {
			ch <- ws
		}
	}
}

// start starts cmd and returns a channel that gets its exit status. The
// lock is held across Start so the reaper cannot miss the new pid.
func (r *reaper) start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// children counts the live children of PID 1.
func (r *reaper) children() int {
	b, err := os.ReadFile("/proc/1/task/1/children")
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range splitFields(b) {
		if len(f) > 0 {
			n++
		}
	}
	return n
}

func splitFields(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i, c := range b {
		if c == ' ' || c == '\n' {
			if start >= 0 {
				out = append(out, b[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// supervisor runs the engine as a child and restarts it when it dies.
type supervisor struct {
	reaper *reaper
	log    *slog.Logger
	args   []string

	mu       sync.Mutex
	pid      int
	proc     *os.Process
	exited   chan struct{} // closed when the current process exits
	ready    bool
	readyCh  chan struct{} // closed when the engine first answers
	gate     *os.File      // the first process waits on it (startGated)
	restarts int
	lastExit string
	stopping bool
}

func newSupervisor(r *reaper, log *slog.Logger, args []string) *supervisor {
	return &supervisor{reaper: r, log: log.With("child", "engine"), args: args, readyCh: make(chan struct{})}
}

func (s *supervisor) run() {
	backoff := 500 * time.Millisecond
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		cmd := exec.Command(exe(), s.args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
		gate := s.gate
		if gate != nil {
			cmd.ExtraFiles = []*os.File{gate}
			cmd.Args = append(cmd.Args, "--wait-fd", "3")
			s.gate = nil
		}
		done, err := s.reaper.start(cmd)
		if gate != nil {
			gate.Close() // the child has its copy
		}
		if err != nil {
			s.mu.Unlock()
			s.log.Error("start", "err", err)
			time.Sleep(backoff)
			continue
		}
		exited := make(chan struct{})
		s.pid, s.proc, s.exited, s.ready = cmd.Process.Pid, cmd.Process, exited, false
		s.mu.Unlock()

		started := time.Now()
		go s.watchReady(exited)
		ws := <-done
		cmd.Process.Release()

		s.mu.Lock()
		s.pid, s.proc, s.ready = 0, nil, false
		s.lastExit = describe(ws)
		stopping := s.stopping
		if !stopping {
			s.restarts++
		}
		s.mu.Unlock()
		close(exited)
		if stopping {
			s.log.Info("engine stopped", "status", describe(ws))
			return
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		s.log.Error("engine died; restarting", "status", describe(ws), "in", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, 30*time.Second)
	}
}

// startGated starts the engine process now, to wait before opening its
// state until open(gate) (or to exit at abort(gate)).
func (s *supervisor) startGated() (gate *os.File, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("engine gate: %w", err)
	}
	s.mu.Lock()
	s.gate = r
	s.mu.Unlock()
	go s.run()
	return w, nil
}

// open lets the gated engine go on.
func (s *supervisor) open(gate *os.File) {
	if gate != nil {
		gate.Write([]byte{1})
		gate.Close()
	}
}

// abort ends the gated engine before it opened anything, for good.
func (s *supervisor) abort(gate *os.File) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if gate != nil {
		gate.Close() // the engine reads end of file and exits
	}
}

// watchReady polls the engine's /_ping until it answers or exits.
func (s *supervisor) watchReady(exited chan struct{}) {
	for {
		ctx, cancel := contextWithTimeout(time.Second)
		err := pingEngine(ctx)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.exited == exited {
				s.ready = true
			}
			select {
			case <-s.readyCh:
			default:
				close(s.readyCh)
			}
			s.mu.Unlock()
			return
		}
		select {
		case <-exited:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *supervisor) waitReady(d time.Duration) bool {
	select {
	case <-s.readyCh:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the engine: SIGTERM, then SIGKILL after grace.
func (s *supervisor) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	proc, exited := s.proc, s.exited
	s.mu.Unlock()
	if proc == nil {
		return
	}
	proc.Signal(unix.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		s.log.Warn("engine did not stop in time; killing it")
		proc.Signal(unix.SIGKILL)
		<-exited
	}
}

func (s *supervisor) state() control.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return control.Engine{Running: s.pid != 0, Ready: s.ready, PID: s.pid, Restarts: s.restarts, LastExit: s.lastExit}
}
