//go:build linux

package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client/pkg/stringid"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// maxExecsPerContainer bounds the exec records kept for inspect; the oldest
// finished ones are dropped beyond it.
const maxExecsPerContainer = 256

// Exec is one `docker exec` instance: created, then started once.
type Exec struct {
	ID     string
	c      *Container
	config ctr.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	console  *os.File
	done     chan struct{} // closed when the process has exited
	seq      int
}

// ExecCreate registers an exec in a running container.
func (m *Manager) ExecCreate(ref string, req ctr.ExecCreateRequest) (string, error) {
	c, err := m.Get(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 || req.Cmd[0] == "" {
		return "", errdefs.InvalidArgument("No exec command specified")
	}
	if _, err := ParseDetachKeys(req.DetachKeys); err != nil {
		return "", err
	}
	if err := c.checkExecutable(); err != nil {
		return "", err
	}
	e := &Exec{ID: stringid.GenerateRandomID(), c: c, config: req, done: make(chan struct{})}
	c.mu.Lock()
	pruned := c.pruneExecsLocked()
	c.seq++
	e.seq = c.seq
	c.execs[e.ID] = e
	c.mu.Unlock()
	m.mu.Lock()
	m.execs[e.ID] = e
	for _, id := range pruned {
		delete(m.execs, id)
	}
	m.mu.Unlock()
	m.event(c, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.ID})
	return e.ID, nil
}

func (c *Container) checkExecutable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.run == nil:
		return errdefs.Conflict("container %s is not running", c.rec.ID)
	case c.rec.State.Status == ctr.StatePaused:
		return errdefs.Conflict("container %s is paused, unpause the container before exec", c.rec.ID)
	}
	return nil
}

// pruneExecsLocked drops the oldest finished execs beyond the limit and
// returns their IDs.
func (c *Container) pruneExecsLocked() []string {
	var pruned []string
	for len(c.execs) >= maxExecsPerContainer {
		var oldest *Exec
		for _, e := range c.execs {
			e.mu.Lock()
			finished := e.exitCode != nil || !e.started
			e.mu.Unlock()
			if finished && (oldest == nil || e.seq < oldest.seq) {
				oldest = e
			}
		}
		if oldest == nil {
			break
		}
		delete(c.execs, oldest.ID)
		pruned = append(pruned, oldest.ID)
	}
	return pruned
}

// GetExec finds an exec by ID.
func (m *Manager) GetExec(id string) (*Exec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.execs[id]
	if !ok {
		return nil, errdefs.NotFound("No such exec instance: %s", id)
	}
	e.c.mu.Lock()
	_, kept := e.c.execs[id]
	e.c.mu.Unlock()
	if !kept {
		delete(m.execs, id)
		return nil, errdefs.NotFound("No such exec instance: %s", id)
	}
	return e, nil
}

// Tty reports whether the exec runs on a TTY.
func (e *Exec) Tty() bool { return e.config.Tty }

// ExecCheck verifies that an exec can start now, so the API can answer with
// an error before it takes over the connection.
func (m *Manager) ExecCheck(id string) (*Exec, error) {
	e, err := m.GetExec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	started, exited := e.started, e.exitCode != nil
	e.mu.Unlock()
	switch {
	case exited:
		return nil, errdefs.Conflict("exec command %s has already run", id)
	case started:
		return nil, errdefs.Conflict("Error: Exec command %s is already running", id)
	}
	if err := e.c.checkExecutable(); err != nil {
		return nil, err
	}
	return e, nil
}

// ExecStartOptions carry the client's streams for an exec start.
type ExecStartOptions struct {
	Detach      bool
	ConsoleSize *[2]uint // [height, width]
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer // ignored with a TTY
}

// ExecStart runs the exec and, unless detached, streams its I/O until it
// exits and its output is drained. A process that cannot be started sets
// exit code 126/127 as dockerd does and returns the error.
func (m *Manager) ExecStart(ctx context.Context, id string, opts ExecStartOptions) error {
	e, err := m.ExecCheck(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errdefs.Conflict("Error: Exec command %s is already running", id)
	}
	e.started = true
	e.mu.Unlock()
	c := e.c
	c.mu.Lock()
	r := c.run
	rec := c.rec
	c.mu.Unlock()
	fail := func(err error) error {
		code, kerr := startFailure(err)
		e.finish(code)
		m.event(c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": strconv.Itoa(code)})
		return kerr
	}
	if r == nil {
		return fail(errdefs.Conflict("container %s is not running", rec.ID))
	}
	proc, err := m.execProcess(&rec, r, e.config)
	if err != nil {
		return fail(err)
	}
	if opts.ConsoleSize != nil {
		proc.ConsoleHeight, proc.ConsoleWidth = uint16(opts.ConsoleSize[0]), uint16(opts.ConsoleSize[1])
	}
	er := &run{proc: proc}
	wantStdin := e.config.AttachStdin && opts.Stdin != nil && !opts.Detach
	s, err := er.setupIO(e.config.Tty, wantStdin)
	if err != nil {
		return fail(err)
	}
	if err := r.lc.Run(proc); err != nil {
		s.closeAll()
		// dockerd's words and exit code for an exec that cannot start.
		e.finish(126)
		m.event(c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": "126"})
		return errdefs.InvalidArgument("OCI runtime exec failed: exec failed: %v: unknown", err)
	}
	s.closeChild()
	if e.config.Tty {
		er.console, err = recvConsole(s.consoleParent)
		s.consoleParent.Close()
		if err != nil {
			proc.Signal(os.Kill)
			proc.Wait()
			return fail(err)
		}
		er.outputs = []*os.File{er.console}
		if wantStdin {
			er.stdin = er.console
		}
	}
	pid, _ := proc.Pid()
	e.mu.Lock()
	e.running, e.pid, e.console = true, pid, er.console
	e.mu.Unlock()
	m.event(c, events.Action("exec_start: "+strings.Join(e.config.Cmd, " ")), map[string]string{"execID": e.ID})

	stdout, stderr := opts.Stdout, opts.Stderr
	if opts.Detach || !e.config.AttachStdout {
		stdout = io.Discard
	}
	if opts.Detach || !e.config.AttachStderr || stderr == nil {
		stderr = io.Discard
	}
	if stdout == nil {
		stdout = io.Discard
	}
	for i, f := range er.outputs {
		w := stdout
		if i == 1 {
			w = stderr
		}
		er.copiers.Add(1)
		go func() {
			defer er.copiers.Done()
			io.Copy(&tolerantWriter{w: w}, f)
		}()
	}
	if wantStdin {
		in := er.stdin
		go func() {
			io.Copy(in, opts.Stdin)
			er.closeStdin() // end of input is EOF for the process
		}()
	}
	wait := func() {
		ps, _ := proc.Wait()
		code := exitStatus(ps)
		er.drain()
		if er.console != nil {
			er.console.Close()
		}
		e.finish(code)
		m.event(c, events.ActionExecDie, map[string]string{"execID": e.ID, "exitCode": strconv.Itoa(code)})
	}
	if opts.Detach {
		m.bg.Add(1)
		go func() { defer m.bg.Done(); wait() }()
		return nil
	}
	wait()
	return nil
}

// tolerantWriter keeps consuming output after the client went away, so the
// process never blocks on a full pipe.
type tolerantWriter struct {
	w      io.Writer
	failed bool
}

func (t *tolerantWriter) Write(p []byte) (int, error) {
	if !t.failed {
		if _, err := t.w.Write(p); err != nil {
			t.failed = true
		}
	}
	return len(p), nil
}

func (e *Exec) finish(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running = false
	e.pid = 0
	e.console = nil
	e.exitCode = &code
	select {
	case <-e.done:
	default:
		close(e.done)
	}
}

// execProcess is the exec's process: its command, the container's
// environment plus the exec's, its user and working directory.
func (m *Manager) execProcess(rec *record, r *run, req ctr.ExecCreateRequest) (*libcontainer.Process, error) {
	rootfs := r.lc.Config().Rootfs
	userSpec := req.User
	if userSpec == "" {
		userSpec = rec.Config.User
	}
	u, err := resolveUser(rootfs, userSpec, rec.HostConfig.GroupAdd)
	if err != nil {
		return nil, err
	}
	env := processEnv(mergeEnv(rec.Config.Env, req.Env), rec.Config.Hostname, req.Tty, u.Home)
	cwd := req.WorkingDir
	if cwd == "" {
		cwd = rec.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	p := &libcontainer.Process{Args: req.Cmd, Env: env, Cwd: cwd, UID: u.Uid, GID: u.Gid}
	for _, g := range u.groups() {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	if req.Privileged && !rec.HostConfig.Privileged {
		all := allCaps()
		p.Capabilities = &configs.Capabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return p, nil
}

// ExecInspect reports an exec as GET /exec/{id}/json does.
func (m *Manager) ExecInspect(id string) (ctr.ExecInspectResponse, error) {
	e, err := m.GetExec(id)
	if err != nil {
		return ctr.ExecInspectResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var code *int
	if e.exitCode != nil {
		v := *e.exitCode
		code = &v
	}
	keys, _ := ParseDetachKeys(e.config.DetachKeys)
	priv := e.config.Privileged
	return ctr.ExecInspectResponse{
		ID: e.ID, Running: e.running, ExitCode: code, Pid: e.pid,
		OpenStdin: e.config.AttachStdin, OpenStdout: e.config.AttachStdout, OpenStderr: e.config.AttachStderr,
		CanRemove: false, ContainerID: e.c.rec.ID, DetachKeys: keys,
		ProcessConfig: &ctr.ExecProcessConfig{Tty: e.config.Tty, Entrypoint: e.config.Cmd[0], Arguments: e.config.Cmd[1:],
			Privileged: &priv, User: e.config.User},
	}, nil
}

// ExecResize sets an exec's TTY size.
func (m *Manager) ExecResize(id string, height, width uint) error {
	e, err := m.GetExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	console, running := e.console, e.running
	e.mu.Unlock()
	if !running {
		return errdefs.Conflict("exec %s is not running", id)
	}
	if console == nil {
		return nil
	}
	if err := resizeConsole(console, height, width); err != nil {
		return fmt.Errorf("resize exec: %w", err)
	}
	return nil
}
