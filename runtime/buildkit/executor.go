//go:build linux

package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/mount"
	containerdoci "github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/continuity/fs"
	"github.com/moby/buildkit/executor"
	"github.com/moby/buildkit/executor/oci"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	gatewayapi "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/network"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/container"
)

// stepExecutor runs RUN steps (and the gateway's containers) as one-off
// containers of the engine's own runtime: BuildKit writes the OCI spec
// (dockerd's capabilities, masked paths and seccomp profile), Berth's
// libcontainer wrapper runs it with the cgroup under the engine's parent.
type stepExecutor struct {
	root         string // resolv.conf, hosts and one bundle directory per step
	tasks        *container.Tasks
	networks     map[pb.NetMode]network.Provider
	cgroupParent string
	dns          *oci.DNSConfig
	log          *slog.Logger

	mu      sync.Mutex
	running map[string]*step
}

// step is a running step: what an Exec into it needs.
type step struct {
	spec   *specs.Spec
	rootfs string
	ready  chan struct{} // closed once the process runs (or failed to)
	done   chan struct{}
	err    error // set before done closes
}

func newStepExecutor(root string, tasks *container.Tasks, networks map[pb.NetMode]network.Provider, cgroupParent string, log *slog.Logger) (*stepExecutor, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	// Bundles of a previous process's steps (their tasks were killed by
	// container.NewTasks); resolv.conf and hosts are rewritten on demand.
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if e.IsDir() {
			mount.UnmountAll(filepath.Join(p, "rootfs"), 0)
		}
		os.RemoveAll(p)
	}
	return &stepExecutor{root: root, tasks: tasks, networks: networks, cgroupParent: cgroupParent,
		log: log, running: map[string]*step{}}, nil
}

func (e *stepExecutor) Run(ctx context.Context, id string, root executor.Mount, mounts []executor.Mount, process executor.ProcessInfo, started chan<- struct{}) (_ resourcestypes.Recorder, retErr error) {
	if id == "" {
		id = identity.NewID()
	}
	if err := executor.ValidContainerID(id); err != nil {
		return nil, err
	}
	st := &step{ready: make(chan struct{}), done: make(chan struct{})}
	e.mu.Lock()
	if _, ok := e.running[id]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("step container %s already exists", id)
	}
	e.running[id] = st
	e.mu.Unlock()
	var startOnce sync.Once
	markStarted := func() {
		startOnce.Do(func() {
			close(st.ready)
			if started != nil {
				close(started)
			}
		})
	}
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
		st.err = retErr
		markStarted()
		close(st.done)
	}()

	meta := process.Meta
	if meta.Proxy != nil {
		return nil, errors.New("the proxy network mode is not supported by this builder")
	}
	provider, ok := e.networks[meta.NetMode]
	if !ok {
		return nil, fmt.Errorf("network mode %s is not supported by this builder", meta.NetMode)
	}
	ns, err := provider.New(ctx, meta.Hostname, network.NamespaceOptions{})
	if err != nil {
		return nil, err
	}
	defer ns.Close()

	stateRoot, err := os.OpenRoot(e.root)
	if err != nil {
		return nil, err
	}
	defer stateRoot.Close()
	resolvConf, err := oci.GetResolvConf(ctx, stateRoot, nil, e.dns, meta.NetMode)
	if err != nil {
		return nil, err
	}
	hostsFile, cleanHosts, err := oci.GetHostsFile(ctx, stateRoot, meta.ExtraHosts, nil, meta.Hostname)
	if err != nil {
		return nil, err
	}
	if cleanHosts != nil {
		defer cleanHosts()
	}

	mountable, err := root.Src.Mount(ctx, false)
	if err != nil {
		return nil, err
	}
	rootMounts, release, err := mountable.Mount()
	if err != nil {
		return nil, err
	}
	if release != nil {
		defer release()
	}
	bundle := filepath.Join(e.root, id)
	if err := os.Mkdir(bundle, 0o711); err != nil {
		return nil, err
	}
	defer os.RemoveAll(bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(rootfs, 0o700); err != nil {
		return nil, err
	}
	if err := mount.All(rootMounts, rootfs); err != nil {
		return nil, fmt.Errorf("mount step root: %w", err)
	}
	defer mount.Unmount(rootfs, 0)
	defer executor.MountStubsCleaner(context.WithoutCancel(ctx), rootfs, mounts, meta.RemoveMountStubsRecursive)()

	uid, gid, sgids, err := oci.GetUser(rootfs, meta.User)
	if err != nil {
		return nil, err
	}
	opts := []containerdoci.SpecOpts{oci.WithUIDGID(uid, gid, sgids)}
	if meta.ReadonlyRootFS {
		opts = append(opts, containerdoci.WithRootFSReadonly())
	}
	spec, cleanup, err := oci.GenerateSpec(ctx, meta, mounts, id, filepath.Join(e.root, resolvConf),
		filepath.Join(e.root, hostsFile), ns, e.cgroupParent, oci.ProcessSandbox, nil, "", false, "", nil, opts...)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	spec.Root.Path = rootfs
	spec.Root.Readonly = spec.Root.Readonly || root.Readonly
	spec.Process.Terminal = meta.Tty
	if err := ensureWorkdir(rootfs, meta.Cwd, int(uid), int(gid)); err != nil {
		return nil, err
	}
	st.spec, st.rootfs = spec, rootfs

	e.log.Debug("step start", "id", id, "args", meta.Args)
	code, err := e.tasks.Run(ctx, id, spec, taskIO(process), markStarted)
	return nil, exitError(ctx, code, err, meta.ValidExitCodes)
}

func (e *stepExecutor) Exec(ctx context.Context, id string, process executor.ProcessInfo) error {
	e.mu.Lock()
	st, ok := e.running[id]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("container %s not found", id)
	}
	select {
	case <-st.ready:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case <-st.done:
		if st.err != nil {
			return fmt.Errorf("container %s has exited with error: %w", id, st.err)
		}
		return fmt.Errorf("container %s has stopped", id)
	default:
	}
	meta := process.Meta
	p := *st.spec.Process
	if meta.User != "" {
		uid, gid, sgids, err := oci.GetUser(st.rootfs, meta.User)
		if err != nil {
			return err
		}
		p.User = specs.User{UID: uid, GID: gid, AdditionalGids: sgids}
	}
	p.Terminal = meta.Tty
	p.Args = meta.Args
	if meta.Cwd != "" {
		p.Cwd = meta.Cwd
	}
	if len(meta.Env) > 0 {
		p.Env = meta.Env
	}
	code, err := e.tasks.Exec(ctx, id, &p, taskIO(process), nil)
	return exitError(ctx, code, err, meta.ValidExitCodes)
}

// taskIO adapts BuildKit's process stdio for the runtime. Signals and
// resizes are forwarded as they come.
func taskIO(p executor.ProcessInfo) container.TaskIO {
	tio := container.TaskIO{Tty: p.Meta.Tty, Signal: p.Signal}
	if p.Stdin != nil {
		tio.Stdin = p.Stdin
	}
	if p.Stdout != nil {
		tio.Stdout = p.Stdout
	}
	if p.Stderr != nil {
		tio.Stderr = p.Stderr
	}
	if p.Resize != nil {
		ch := make(chan container.TaskWinSize)
		go func() {
			defer close(ch)
			for ws := range p.Resize {
				ch <- container.TaskWinSize{Rows: uint16(ws.Rows), Cols: uint16(ws.Cols)}
			}
		}()
		tio.Resize = ch
	}
	return tio
}

// ensureWorkdir creates the step's working directory inside its root,
// owned by the step's user, as runc's executor does.
func ensureWorkdir(rootfs, cwd string, uid, gid int) error {
	p, err := fs.RootPath(rootfs, cwd)
	if err != nil {
		return fmt.Errorf("working dir %s points to invalid target: %w", cwd, err)
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := user.MkdirAllAndChown(p, 0o755, uid, gid); err != nil {
		return fmt.Errorf("failed to create working directory %s: %w", cwd, err)
	}
	return nil
}

// exitError turns a step's end into what BuildKit's solver expects: nil
// for an accepted exit code, else a gateway ExitError carrying the code
// (the CLI prints "did not complete successfully: exit code: N").
func exitError(ctx context.Context, code int, err error, valid []int) error {
	if err != nil && code < 0 {
		return err
	}
	if err == nil {
		if valid == nil && code == 0 || slices.Contains(valid, code) {
			return nil
		}
	}
	exitErr := &gatewayapi.ExitError{ExitCode: uint32(code)}
	if ctx.Err() != nil {
		exitErr.Err = fmt.Errorf("%s: %w", exitErr.Error(), context.Cause(ctx))
	}
	return exitErr
}

var _ executor.Executor = (*stepExecutor)(nil)
