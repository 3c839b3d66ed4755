//go:build linux

package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
	bnet "github.com/berth-dev/berth/runtime/network"
)

// drainTimeout bounds how long output is read after the init process exits.
// With a private PID namespace every holder of the pipes is dead by then,
// so this only guards against the unexpected.
const drainTimeout = 5 * time.Second

// run is a container's live process and the plumbing around it.
type run struct {
	lc      *libcontainer.Container
	proc    *libcontainer.Process
	cg      cgroups.Manager
	pid     int
	stdinMu sync.Mutex
	stdin   *os.File // pipe to the process's stdin, or the pty; nil without OpenStdin
	console *os.File // pty master with a TTY
	outputs []*os.File
	copiers sync.WaitGroup
	logs    *logWriter
	net     *bnet.Sandbox // nil without a network manager
	volumes []string      // mounted for this run (volumes with mount options)
	exited  chan struct{} // closed once the exit is recorded
}

// Start starts a created or stopped container.
func (m *Manager) Start(ctx context.Context, ref string) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	st, gone := c.rec.State.Status, c.gone
	if gone {
		c.mu.Unlock()
		return errdefs.NotFound("No such container: %s", ref)
	}
	switch st {
	case ctr.StatePaused:
		c.mu.Unlock()
		return errdefs.Conflict("cannot start a paused container, try unpause instead")
	case ctr.StateRunning, ctr.StateRestarting:
		c.mu.Unlock()
		return errdefs.NotModified("container already started")
	case ctr.StateDead, ctr.StateRemoving:
		c.mu.Unlock()
		return errdefs.Conflict("container is marked for removal and cannot be started")
	}
	// An explicit start resets the restart policy's count and back-off.
	c.restart.stop()
	c.restart = newRestartManager(c.rec.HostConfig.RestartPolicy, 0)
	c.rec.RestartCount = 0
	c.rec.HasBeenManuallyStopped = false
	autoRemove := c.rec.HostConfig.AutoRemove
	c.mu.Unlock()
	err = m.startLocked(c, false)
	if err != nil && autoRemove {
		// As dockerd: a --rm container that cannot start is removed (docker
		// run waits for that before it reports the error).
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			if err := m.Remove(context.Background(), c.rec.ID, RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
				m.log.Error("auto-remove after failed start", "container", c.rec.ID, "err", err)
			}
		}()
	}
	return err
}

// startPolicy starts a container again under its restart policy.
func (m *Manager) startPolicy(c *Container) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	select {
	case <-c.restart.done():
		m.settleRestarting(c)
		return nil
	default:
	}
	c.mu.Lock()
	st, gone := c.rec.State.Status, c.gone
	c.mu.Unlock()
	if gone || (st != ctr.StateRestarting && st != ctr.StateExited) {
		return nil
	}
	if m.isShuttingDown() {
		m.settleRestarting(c)
		return nil
	}
	err := m.startLocked(c, true)
	if err != nil {
		m.settleRestarting(c)
	}
	return err
}

// settleRestarting records a container whose pending restart was
// cancelled (or failed) as exited.
func (m *Manager) settleRestarting(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State.Status == ctr.StateRestarting {
		c.rec.State.Status = ctr.StateExited
		m.saveLogged(c)
		c.notifyLocked()
	}
}

func (m *Manager) isShuttingDown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shuttingDown
}

// startLocked starts the container's process. Call with c.opMu held.
func (m *Manager) startLocked(c *Container, policy bool) (err error) {
	began := time.Now()
	ph := newPhases()
	rec := c.snapshot()
	id := rec.ID
	fail := func(err error) error {
		code, kerr := startFailure(err)
		c.mu.Lock()
		c.rec.State.ExitCode = code
		c.rec.State.Error = err.Error()
		if c.rec.State.Status == ctr.StateRestarting {
			c.rec.State.Status = ctr.StateExited
		}
		serr := m.saveLogged(c)
		c.notifyLocked()
		c.mu.Unlock()
		m.cfg.RootFS.Unmount(id)
		if serr != nil {
			return fmt.Errorf("%w (and its state could not be saved: %v)", kerr, serr)
		}
		return kerr
	}
	rootfs, err := m.cfg.RootFS.Prepare(id, rec.ChainID)
	if err != nil {
		return fail(fmt.Errorf("mount rootfs: %w", err))
	}
	ph.mark("rootfs")
	sb, err := m.joinNetwork(&rec)
	if err != nil {
		m.cfg.RootFS.Unmount(id)
		return err
	}
	if sb != nil {
		defer func() {
			if err != nil {
				m.cfg.Networks.Leave(id)
			}
		}()
	}
	ph.mark("network")
	spec, err := m.buildSpec(&rec, rootfs, c.dir, sb)
	if err != nil {
		m.cfg.RootFS.Unmount(id)
		return err
	}
	defer func() {
		if err != nil {
			m.unmountVolumes(spec.volumes)
		}
	}()
	lc, err := createLibcontainer(m.cfg.RuntimeRoot, id, spec.config)
	if err != nil {
		return fail(err)
	}
	ph.mark("spec")
	p := spec.process
	proc := &libcontainer.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, Init: true,
		UID: int(p.User.UID), GID: int(p.User.GID),
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	if p.ConsoleSize != nil {
		proc.ConsoleHeight, proc.ConsoleWidth = uint16(p.ConsoleSize.Height), uint16(p.ConsoleSize.Width)
	}
	if proc.Rlimits, err = rlimits(p.Rlimits); err != nil {
		m.cfg.RootFS.Unmount(id)
		return err
	}
	r := &run{lc: lc, proc: proc, net: sb, exited: make(chan struct{}), volumes: spec.volumes}
	stdio, err := r.setupIO(rec.Config.Tty, rec.Config.OpenStdin)
	if err != nil {
		lc.Destroy()
		return fail(err)
	}
	logOpts, err := parseLogOptions(rec.HostConfig.LogConfig)
	if err != nil {
		stdio.closeAll()
		lc.Destroy()
		return fail(err)
	}
	r.logs, err = openLogWriter(c.logPath(), rec.HostConfig.LogConfig.Type != "none", logOpts)
	if err != nil {
		stdio.closeAll()
		lc.Destroy()
		return fail(err)
	}
	ph.mark("io")
	if err := lc.Start(proc); err != nil {
		stdio.closeAll()
		r.logs.close()
		lc.Destroy()
		return fail(err)
	}
	ph.mark("init")
	if err := lc.Exec(); err != nil {
		stdio.closeAll()
		r.logs.close()
		lc.Destroy()
		return fail(err)
	}
	if pid, err := proc.Pid(); err == nil {
		waitExeced(pid, rec.HostConfig.Init != nil && *rec.HostConfig.Init)
	}
	ph.mark("exec")
	stdio.closeChild()
	if rec.Config.Tty {
		r.console, err = recvConsole(stdio.consoleParent)
		stdio.consoleParent.Close()
		if err != nil {
			lc.Signal(unix.SIGKILL)
			proc.Wait()
			r.logs.close()
			lc.Destroy()
			return fail(err)
		}
		r.outputs = []*os.File{r.console}
		if rec.Config.OpenStdin {
			r.stdin = r.console
		}
	}
	r.pid, _ = proc.Pid()
	if r.cg, err = cgroupManager(spec.config); err != nil {
		m.log.Warn("cgroup manager", "container", id, "err", err)
	}
	for i, f := range r.outputs {
		r.copiers.Add(1)
		go r.copyOutput(c, f, i == 1)
	}

	c.mu.Lock()
	c.run = r
	c.logs = r.logs
	c.rec.State = State{Status: ctr.StateRunning, Pid: r.pid, StartedAt: time.Now().UTC(),
		Health: startingHealth(c.rec.Config, c.rec.State.Health)}
	checked := c.rec.State.Health != nil
	c.rec.HasBeenStartedBefore = true
	if policy {
		c.rec.RestartCount++
	}
	if err := c.saveLocked(); err != nil {
		m.log.Error("save state", "container", id, "err", err)
	}
	c.notifyLocked()
	c.mu.Unlock()
	m.event(c, events.ActionStart, nil)
	ph.mark("record")
	m.log.Debug("container started", append([]any{"container", id, "pid", r.pid, "took", time.Since(began)}, ph.attrs...)...)
	m.bg.Add(1)
	go m.monitor(c, r)
	if checked {
		m.bg.Add(1)
		go m.monitorHealth(c, r)
	}
	return nil
}

// stdio holds the descriptors set up for one process start.
type stdio struct {
	child         []*os.File // ends given to the process, closed once it runs
	parent        []*os.File
	consoleParent *os.File
}

func (s *stdio) closeChild() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

func (s *stdio) closeAll() {
	s.closeChild()
	for _, f := range s.parent {
		f.Close()
	}
	if s.consoleParent != nil {
		s.consoleParent.Close()
	}
}

// setupIO gives the process its stdio: a pty (received after start) or
// pipes for stdout and stderr, and a stdin pipe when stdin is open.
func (r *run) setupIO(tty, openStdin bool) (*stdio, error) {
	s := &stdio{}
	if tty {
		parent, child, err := consolePair()
		if err != nil {
			return nil, err
		}
		r.proc.ConsoleSocket = child
		s.child = append(s.child, child)
		s.consoleParent = parent
		return s, nil
	}
	for i := 0; i < 2; i++ {
		rd, wr, err := os.Pipe()
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("stdio pipe: %w", err)
		}
		s.child = append(s.child, wr)
		s.parent = append(s.parent, rd)
		r.outputs = append(r.outputs, rd)
	}
	r.proc.Stdout, r.proc.Stderr = s.child[0], s.child[1]
	if openStdin {
		rd, wr, err := os.Pipe()
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
		s.child = append(s.child, rd)
		s.parent = append(s.parent, wr)
		r.proc.Stdin = rd
		r.stdin = wr
	}
	return s, nil
}

// copyOutput feeds one output stream to the attached clients and the log.
func (r *run) copyOutput(c *Container, f *os.File, stderr bool) {
	defer r.copiers.Done()
	name := "stdout"
	if stderr {
		name = "stderr"
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			c.attach.write(stderr, buf[:n])
			r.logs.write(name, buf[:n])
		}
		if err != nil {
			return // EOF, or EIO from a pty whose last holder exited
		}
	}
}

// drain waits for the output copiers to reach the end of their streams,
// then closes every descriptor of the run.
func (r *run) drain() {
	done := make(chan struct{})
	go func() { r.copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
	for _, f := range r.outputs {
		f.Close()
	}
	r.closeStdin()
	<-done
}

// stdinFile is the run's stdin (nil once closed or without OpenStdin).
func (r *run) stdinFile() *os.File {
	r.stdinMu.Lock()
	defer r.stdinMu.Unlock()
	return r.stdin
}

// closeStdin ends the process's input: EOF on its stdin pipe. A TTY's
// input is the pty itself, which stays open for output.
func (r *run) closeStdin() {
	r.stdinMu.Lock()
	defer r.stdinMu.Unlock()
	if r.stdin != nil && r.stdin != r.console {
		r.stdin.Close()
	}
	r.stdin = nil
}

// monitor waits for the container's init to exit and records the exit:
// OOM kills, the exit code, events, then AutoRemove or the restart policy.
func (m *Manager) unmountVolumes(names []string) {
	for _, v := range names {
		m.cfg.Volumes.Unmount(v)
	}
}

func (m *Manager) monitor(c *Container, r *run) {
	defer m.bg.Done()
	ps, _ := r.proc.Wait()
	exited := time.Now()
	ph := newPhases()
	code := exitStatus(ps)
	r.drain()
	ph.mark("drain")
	oom := false
	if r.cg != nil {
		if n, err := r.cg.OOMKillCount(); err == nil && n > 0 {
			oom = true
		}
	}
	if err := r.lc.Destroy(); err != nil {
		m.log.Warn("destroy container runtime state", "container", c.rec.ID, "err", err)
	}
	ph.mark("destroy")
	r.logs.close()
	if err := m.cfg.RootFS.Unmount(c.rec.ID); err != nil {
		m.log.Warn("unmount rootfs", "container", c.rec.ID, "err", err)
	}
	m.unmountVolumes(r.volumes)
	ph.mark("unmount")
	if r.net != nil {
		m.cfg.Networks.Leave(c.rec.ID)
	}
	ph.mark("network")

	c.mu.Lock()
	started := c.rec.State.StartedAt
	ran := time.Since(started)
	restart, delay := false, time.Duration(0)
	if !c.gone && !m.isShuttingDown() {
		restart, delay = c.restart.shouldRestart(code, c.rec.HasBeenManuallyStopped, ran)
	}
	status := ctr.StateExited
	if restart {
		status = ctr.StateRestarting
	}
	c.rec.State = State{Status: status, ExitCode: code, OOMKilled: oom, StartedAt: started, FinishedAt: time.Now().UTC(),
		Health: stoppedHealth(c.rec.State.Health)}
	c.run = nil
	c.exits++
	autoRemove := c.rec.HostConfig.AutoRemove && !restart
	// A --rm container is deleted next; should the agent die first, the
	// record still says running, and the next start reaps and removes it.
	if !autoRemove {
		if err := c.saveLocked(); err != nil {
			m.log.Error("save state", "container", c.rec.ID, "err", err)
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	// Attached clients end after the state shows the exit, so one that
	// inspects the container when its stream ends sees it stopped.
	c.attach.endRun()
	if oom {
		m.event(c, events.ActionOOM, nil)
	}
	m.event(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
	close(r.exited)
	m.log.Debug("container exited", append([]any{"container", c.rec.ID, "exitCode", code, "oom", oom, "recorded", time.Since(exited)}, ph.attrs...)...)

	switch {
	case restart:
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				if err := m.startPolicy(c); err != nil {
					m.log.Error("restart policy", "container", c.rec.ID, "err", err)
				}
			case <-c.restart.done():
				m.settleRestarting(c)
			}
		}()
	case autoRemove:
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			if err := m.Remove(context.Background(), c.rec.ID, RemoveOptions{}); err != nil && !errdefs.IsNotFound(err) {
				m.log.Error("auto-remove", "container", c.rec.ID, "err", err)
			}
		}()
	}
}

// StopOptions is a stop or restart request.
type StopOptions struct {
	Signal  string // overrides the container's stop signal
	Timeout *int   // seconds before SIGKILL; nil: the container's, else 10; -1 waits forever
}

const defaultStopTimeout = 10

// Stop sends the stop signal, then SIGKILL after the timeout.
func (m *Manager) Stop(ctx context.Context, ref string, opts StopOptions) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	return m.stop(ctx, c, opts, true)
}

// stop is Stop with c.opMu held; manual marks a user's stop (it matters to
// unless-stopped on the next engine start).
func (m *Manager) stop(ctx context.Context, c *Container, opts StopOptions, manual bool) error {
	c.restart.stop()
	c.mu.Lock()
	r, status := c.run, c.rec.State.Status
	if manual && (r != nil || status == ctr.StateRestarting) {
		c.rec.HasBeenManuallyStopped = true
		m.saveLogged(c) // the stop goes on: a full disk must not keep a container running
	}
	stopSignal, cfgTimeout := c.rec.Config.StopSignal, c.rec.Config.StopTimeout
	c.mu.Unlock()
	if r == nil {
		if status == ctr.StateRestarting {
			m.settleRestarting(c)
			m.event(c, events.ActionStop, nil)
			return nil
		}
		return errdefs.NotModified("container already stopped")
	}
	if opts.Signal != "" {
		stopSignal = opts.Signal
	}
	sig, err := ParseSignal(stopSignal, unix.SIGTERM)
	if err != nil {
		return err
	}
	timeout := defaultStopTimeout
	if cfgTimeout != nil {
		timeout = *cfgTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	c.mu.Lock()
	if c.rec.State.Status == ctr.StatePaused {
		// A frozen process cannot act on its stop signal.
		if err := r.lc.Resume(); err == nil {
			c.rec.State.Status = ctr.StateRunning
			c.notifyLocked()
		}
	}
	c.mu.Unlock()
	if err := m.signal(c, r, sig); err != nil {
		return err
	}
	var expire <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-r.exited:
	case <-expire:
		if err := m.killAndWait(ctx, c); err != nil {
			return err
		}
	case <-ctx.Done():
		if err := m.killAndWait(context.Background(), c); err != nil {
			return err
		}
	}
	m.event(c, events.ActionStop, nil)
	return nil
}

// killAndWait sends SIGKILL and waits until the exit is recorded.
func (m *Manager) killAndWait(ctx context.Context, c *Container) error {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	if err := m.signal(c, r, unix.SIGKILL); err != nil {
		return err
	}
	select {
	case <-r.exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", c.rec.ID)
	}
}

// signal delivers sig to the container's init (PID 1) and reports a kill
// event, as dockerd does for every signal it sends.
func (m *Manager) signal(c *Container, r *run, sig unix.Signal) error {
	if err := r.lc.Signal(sig); err != nil {
		select {
		case <-r.exited:
			return nil
		default:
		}
		if err == libcontainer.ErrNotRunning {
			return nil // exited meanwhile; the monitor records it
		}
		return fmt.Errorf("signal %d to container %s: %w", int(sig), c.rec.ID, err)
	}
	m.event(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// Kill sends a signal (default SIGKILL) to the container's PID 1. Killing
// with SIGKILL or the stop signal cancels the restart policy for this exit.
func (m *Manager) Kill(ctx context.Context, ref, signal string) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	sig, err := ParseSignal(signal, unix.SIGKILL)
	if err != nil {
		return err
	}
	c.mu.Lock()
	r, name, status, stopSig := c.run, c.rec.Name, c.rec.State.Status, c.rec.Config.StopSignal
	c.mu.Unlock()
	if status == ctr.StateRestarting {
		c.restart.stop()
		m.settleRestarting(c)
		return nil
	}
	if r == nil {
		return errdefs.Conflict("cannot kill container: %s: container %s is not running", name, c.rec.ID)
	}
	if ss, err := ParseSignal(stopSig, unix.SIGTERM); sig == unix.SIGKILL || (err == nil && sig == ss) {
		c.restart.stop()
	}
	return m.signal(c, r, sig)
}

// Restart stops the container if it runs, then starts it.
func (m *Manager) Restart(ctx context.Context, ref string, opts StopOptions) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if err := m.stop(ctx, c, opts, false); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	c.mu.Lock()
	c.restart.stop()
	c.restart = newRestartManager(c.rec.HostConfig.RestartPolicy, 0)
	c.rec.RestartCount = 0
	c.rec.HasBeenManuallyStopped = false
	c.mu.Unlock()
	if err := m.startLocked(c, false); err != nil {
		return err
	}
	m.event(c, events.ActionRestart, nil)
	return nil
}

// Pause freezes every process of the container (cgroup freezer).
func (m *Manager) Pause(ctx context.Context, ref string) error {
	return m.setPaused(ref, true)
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	return m.setPaused(ref, false)
}

func (m *Manager) setPaused(ref string, pause bool) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	r, paused, id := c.run, c.rec.State.Status == ctr.StatePaused, c.rec.ID
	c.mu.Unlock()
	switch {
	case pause && r == nil:
		return errdefs.Conflict("Container %s is not running", id)
	case pause && paused:
		return errdefs.Conflict("Container %s is already paused", id)
	case !pause && (r == nil || !paused):
		return errdefs.As(errdefs.KindUnknown, fmt.Errorf("Container %s is not paused", id)) // a 500, as dockerd's
	}
	status, action := ctr.StatePaused, events.ActionPause
	if pause {
		err = r.lc.Pause()
	} else {
		status, action = ctr.StateRunning, events.ActionUnPause
		err = r.lc.Resume()
	}
	if err != nil {
		return fmt.Errorf("%s container %s: %w", action, id, err)
	}
	c.mu.Lock()
	var serr error
	if c.run == r {
		c.rec.State.Status = status
		serr = m.saveLogged(c)
		c.notifyLocked()
	}
	c.mu.Unlock()
	m.event(c, action, nil)
	if serr != nil {
		return fmt.Errorf("%s container %s: done, but its state could not be saved: %w", action, id, serr)
	}
	return nil
}

// WaitResult is the outcome of a wait.
type WaitResult struct {
	ExitCode int
	Err      error // set when the wait itself failed (context ended)
	// StateError is the container's error (a start that failed), which
	// dockerd reports in the wait's answer.
	StateError string
}

// Wait registers a wait for cond and returns a channel that receives the
// exit code once it holds. The registration is done when Wait returns, so
// a start issued afterwards cannot be missed (docker run relies on it).
func (m *Manager) Wait(ctx context.Context, ref string, cond ctr.WaitCondition) (<-chan WaitResult, error) {
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", ctr.WaitConditionNotRunning, ctr.WaitConditionNextExit, ctr.WaitConditionRemoved:
	default:
		return nil, errdefs.InvalidArgument("invalid condition: %q", cond)
	}
	c.mu.Lock()
	startExits := c.exits
	c.mu.Unlock()
	out := make(chan WaitResult, 1)
	go func() {
		for {
			c.mu.Lock()
			st, exits, changed, gone := c.rec.State, c.exits, c.changed, isClosed(c.removed)
			c.mu.Unlock()
			done := gone
			switch cond {
			case ctr.WaitConditionNextExit:
				done = done || exits > startExits
			case ctr.WaitConditionRemoved:
			default:
				done = done || !st.Running()
			}
			if done {
				out <- WaitResult{ExitCode: st.ExitCode, StateError: st.Error}
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				out <- WaitResult{Err: ctx.Err()}
				return
			}
		}
	}()
	return out, nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Resize sets the container's TTY size.
func (m *Manager) Resize(ref string, height, width uint) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r == nil {
		return errdefs.Conflict("Container %s is not running", c.rec.ID)
	}
	if r.console == nil {
		return nil // dockerd ignores resizes of containers without a TTY
	}
	if err := resizeConsole(r.console, height, width); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	m.event(c, events.ActionResize, map[string]string{"height": strconv.Itoa(int(height)), "width": strconv.Itoa(int(width))})
	return nil
}

// phases times the steps of an operation for the debug log.
type phases struct {
	last  time.Time
	attrs []any
}

func newPhases() *phases { return &phases{last: time.Now()} }

// mark records the time since the previous mark under name.
func (p *phases) mark(name string) {
	now := time.Now()
	p.attrs = append(p.attrs, name, now.Sub(p.last).Round(10*time.Microsecond))
	p.last = now
}
