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
	binary string
	args   []string

	mu       sync.Mutex
	pid      int
	proc     *os.Process
	exited   chan struct{} // closed when the current process exits
	ready    bool
	readyCh  chan struct{} // closed when the engine first answers
	gate     *gate         // the first process waits at it (startGated)
	restarts int
	lastExit string
	stopping bool
}

func newSupervisor(r *reaper, log *slog.Logger, binary string, args []string) *supervisor {
	return &supervisor{reaper: r, log: log.With("child", "engine"), binary: binary, args: args, readyCh: make(chan struct{})}
}

// gate holds the engine's first process before it opens its state: one end
// of a socket pair is the engine's --wait-fd. The engine writes a byte when
// it gets there (its Go runtime and package initialisation done) and goes
// on at the byte PID 1 writes; it exits at end of file.
type gate struct {
	ours, theirs *os.File
	boot         *bootLog

	mu              sync.Mutex
	arrived, opened bool
}

func (s *supervisor) run() {
	backoff := 500 * time.Millisecond
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		cmd := exec.Command(s.binary, s.args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
		g := s.gate
		s.gate = nil
		if g != nil {
			cmd.ExtraFiles = []*os.File{g.theirs}
			cmd.Args = append(cmd.Args, "--wait-fd", "3")
			g.begin()
		}
		done, err := s.reaper.start(cmd)
		if g != nil {
			g.theirs.Close() // the child has its copy
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
		go s.watchReady(exited, g)
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
// state until open (or to exit at abort). Its phases go to boot.
func (s *supervisor) startGated(boot *bootLog) (*gate, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("engine gate: %w", err)
	}
	g := &gate{ours: os.NewFile(uintptr(fds[0]), "gate"), theirs: os.NewFile(uintptr(fds[1]), "gate"), boot: boot}
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	go s.run()
	return g, nil
}

// begin starts the engine-start phase as the process starts, and ends it
// when the engine says it waits at the gate.
func (g *gate) begin() {
	end := g.boot.begin(control.PhaseEngineStart)
	go func() {
		var b [1]byte
		if n, _ := g.ours.Read(b[:]); n != 1 {
			return // exited, or aborted
		}
		end()
		g.mu.Lock()
		g.arrived = true
		if g.opened {
			g.boot.begin(control.PhaseEngineOpen)
		}
		g.mu.Unlock()
	}()
}

// open lets the gated engine go on.
func (s *supervisor) open(g *gate) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.opened = true
	if g.arrived {
		g.boot.begin(control.PhaseEngineOpen)
	}
	g.mu.Unlock()
	g.ours.Write([]byte{1})
	// Closed once the engine has read it: closing at once could drop the
	// byte with the socket.
}

// abort ends the gated engine before it opened anything, for good.
func (s *supervisor) abort(g *gate) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if g != nil {
		g.ours.Close() // the engine reads end of file and exits
	}
}

// watchReady polls the engine's /_ping until it answers or exits; the
// first process's answer ends the boot's engine-open phase.
func (s *supervisor) watchReady(exited chan struct{}, g *gate) {
	if g != nil {
		defer g.ours.Close()
	}
	for {
		ctx, cancel := contextWithTimeout(time.Second)
		err := pingEngine(ctx)
		cancel()
		if err == nil {
			if g != nil {
				g.boot.end(control.PhaseEngineOpen, bootTime())
			}
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
