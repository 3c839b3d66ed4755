//go:build linux

package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Tasks runs one-off containers from OCI specs made elsewhere, as BuildKit
// makes one for each RUN step: no record, no logs, no restart policy. The
// caller owns the root filesystem and every mount the spec names; Tasks
// owns the libcontainer state under its root and the cgroup.
type Tasks struct {
	root string
	log  *slog.Logger

	mu      sync.Mutex
	running map[string]*task
}

// task is one running container of a Tasks.
type task struct {
	lc     *libcontainer.Container
	exited chan struct{}
}

// TaskIO is a task process's stdio. Nil streams are /dev/null. With Tty the
// process gets a terminal and Stderr is unused (the terminal carries both).
type TaskIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Tty            bool
	Resize         <-chan TaskWinSize
	Signal         <-chan syscall.Signal
}

// TaskWinSize is a terminal size change.
type TaskWinSize struct{ Rows, Cols uint16 }

// NewTasks keeps libcontainer state under root, killing and removing what
// a previous process left there (a crashed builder's steps).
func NewTasks(root string, log *slog.Logger) (*Tasks, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("task state: %w", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("task state: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			killLeftover(root, e.Name(), log)
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	return &Tasks{root: root, log: log, running: map[string]*task{}}, nil
}

// Run starts spec's process, confined as a default `docker run` container
// is, as the init of a new container named id and
// waits for it to exit, returning its exit status (128+N for signal N).
// started, when not nil, is called once the process runs. When ctx ends the
// container is killed; Run returns once it is gone and its cgroup removed.
func (t *Tasks) Run(ctx context.Context, id string, spec *specs.Spec, tio TaskIO, started func()) (int, error) {
	// The confinement of a plain `docker run`, whatever the spec's maker
	// chose: capabilities, masked paths, devices, seccomp.
	if err := confine(spec, &ctr.HostConfig{}); err != nil {
		return -1, err
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, Spec: spec, NoPivotRoot: rootIsRamfs()})
	if err != nil {
		return -1, errdefs.InvalidArgument("task %s: %v", id, err)
	}
	t.mu.Lock()
	if _, ok := t.running[id]; ok {
		t.mu.Unlock()
		return -1, errdefs.Conflict("task %s is already running", id)
	}
	lc, err := createLibcontainer(t.root, id, cfg)
	if err != nil {
		t.mu.Unlock()
		return -1, fmt.Errorf("task %s: %w", id, err)
	}
	tk := &task{lc: lc, exited: make(chan struct{})}
	t.running[id] = tk
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.running, id)
		t.mu.Unlock()
		close(tk.exited)
		if err := lc.Destroy(); err != nil {
			t.log.Warn("destroy task", "task", id, "err", err)
		}
	}()
	proc, err := taskProcess(spec.Process, true)
	if err != nil {
		return -1, err
	}
	return t.runProcess(ctx, id, lc, proc, tio, started, func() error { return lc.Run(proc) })
}

// Exec runs one more process in the running task id and waits for it.
func (t *Tasks) Exec(ctx context.Context, id string, p *specs.Process, tio TaskIO, started func()) (int, error) {
	t.mu.Lock()
	tk, ok := t.running[id]
	t.mu.Unlock()
	if !ok {
		return -1, errdefs.NotFound("task %s is not running", id)
	}
	proc, err := taskProcess(p, false)
	if err != nil {
		return -1, err
	}
	// An exec dies with its container; its own context ending kills only it.
	return t.runProcess(ctx, id, nil, proc, tio, started, func() error { return tk.lc.Run(proc) })
}

// runProcess wires stdio, starts the process with start, forwards signals
// and resizes, and waits. lc, when set, is the container to kill when ctx
// ends (the init's run); otherwise only the process is killed.
func (t *Tasks) runProcess(ctx context.Context, id string, lc *libcontainer.Container, proc *libcontainer.Process, tio TaskIO, started func(), start func() error) (int, error) {
	var (
		console     *os.File
		consoleSock *os.File
		copiers     sync.WaitGroup
	)
	if tio.Tty {
		parent, child, err := consolePair()
		if err != nil {
			return -1, err
		}
		defer parent.Close()
		proc.ConsoleSocket = child
		consoleSock = parent
		defer child.Close()
	} else {
		proc.Stdin, proc.Stdout, proc.Stderr = tio.Stdin, tio.Stdout, tio.Stderr
	}
	if err := start(); err != nil {
		_, err := startFailure(err)
		return -1, err
	}
	if tio.Tty {
		proc.ConsoleSocket.Close()
		var err error
		console, err = recvConsole(consoleSock)
		if err != nil {
			proc.Signal(unix.SIGKILL)
			proc.Wait()
			return -1, err
		}
		defer console.Close()
		if tio.Stdout != nil {
			copiers.Add(1)
			go func() { defer copiers.Done(); io.Copy(tio.Stdout, console) }()
		}
		if tio.Stdin != nil {
			go io.Copy(console, tio.Stdin)
		}
	}
	if started != nil {
		started()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				if lc != nil {
					lc.Signal(unix.SIGKILL)
				} else {
					proc.Signal(unix.SIGKILL)
				}
				return
			case sig, ok := <-tio.Signal:
				if !ok {
					tio.Signal = nil
					continue
				}
				if err := proc.Signal(sig); err != nil {
					t.log.Debug("signal task", "task", id, "signal", sig, "err", err)
				}
			case ws, ok := <-tio.Resize:
				if !ok {
					tio.Resize = nil
					continue
				}
				if console != nil {
					resizeConsole(console, uint(ws.Rows), uint(ws.Cols))
				}
			}
		}
	}()
	ps, werr := proc.Wait()
	close(done)
	copiers.Wait()
	code := exitStatus(ps)
	if ps == nil && werr != nil {
		return -1, fmt.Errorf("task %s: wait: %w", id, werr)
	}
	if ctx.Err() != nil {
		return code, context.Cause(ctx)
	}
	return code, nil
}

// taskProcess converts an OCI process for libcontainer: the user is
// numeric already (BuildKit resolves it from the image).
func taskProcess(p *specs.Process, init bool) (*libcontainer.Process, error) {
	if p == nil {
		return nil, errors.New("task spec has no process")
	}
	proc := &libcontainer.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, Init: init,
		UID: int(p.User.UID), GID: int(p.User.GID),
		NoNewPrivileges: &p.NoNewPrivileges,
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	var err error
	if proc.Rlimits, err = rlimits(p.Rlimits); err != nil {
		return nil, err
	}
	if !init && p.Capabilities != nil {
		c := p.Capabilities
		proc.Capabilities = &configs.Capabilities{Bounding: c.Bounding, Effective: c.Effective,
			Permitted: c.Permitted, Inheritable: c.Inheritable, Ambient: c.Ambient}
	}
	return proc, nil
}

// RemoveCgroup removes the cgroup at path (e.g. "/berth/buildkit") from
// every hierarchy, if it is empty: what the tasks under it leave once they
// are gone.
func RemoveCgroup(path string) {
	if filepath.Clean(path) == "/" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", path))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", path))
	for _, d := range dirs {
		os.Remove(d)
	}
}
