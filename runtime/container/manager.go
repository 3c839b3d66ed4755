//go:build linux

package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client/pkg/stringid"

	"github.com/berth-dev/berth/runtime/errdefs"
	evbus "github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/image"
)

// ImageLookup resolves an image reference or ID to a local image; a missing
// image is an errdefs NotFound ("No such image: …").
type ImageLookup func(ctx context.Context, ref string) (*image.Image, error)

// RootFS provides container root filesystems (runtime/snapshot's Store).
type RootFS interface {
	// Prepare creates, or mounts again, the writable root of key over the
	// layer chain chainID and returns its mount point.
	Prepare(key, chainID string) (string, error)
	// Unmount unmounts key's root but keeps its writable layer.
	Unmount(key string) error
	// Remove unmounts and deletes key's writable layer.
	Remove(key string) error
}

// Config configures a Manager.
type Config struct {
	Root         string // ROOT/containers: one directory per container
	RuntimeRoot  string // libcontainer's state of live containers
	CgroupParent string // e.g. "/berth"
	Images       ImageLookup
	RootFS       RootFS
	Networks     Networks // nil: loopback-only namespaces (tests of this package)
	Volumes      Volumes  // nil: volumes and bind mounts are refused
	Events       *evbus.Bus
	Log          *slog.Logger
	// LogOpts are the json-file options a container gets for those it
	// does not set itself (the agent's --log-opt, as dockerd's), e.g. a
	// max-size that bounds logs on the VM's disk.
	LogOpts map[string]string
	// HostSockets are paths of the engine's socket as the host names it
	// (hostd's forwarded socket, /var/run/docker.sock): a bind mount of
	// one gets EngineSocket, the engine's own API socket, instead.
	HostSockets  []string
	EngineSocket string
}

// trashPrefix marks a removed container's directory awaiting deletion.
const trashPrefix = ".removed-"

// Manager owns every container: their records on disk, their processes
// (the agent is their parent; there is no shim), stdio, logs and restart
// policies.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu           sync.Mutex
	byID         map[string]*Container
	names        map[string]string // name → ID
	execs        map[string]*Exec  // exec ID → exec
	shuttingDown bool
	bg           sync.WaitGroup // monitors and pending restarts
}

// New opens the container store under cfg.Root. Containers that were
// running when the agent last stopped are killed if any process survived
// and marked exited; AutoRemove containers among them are removed; then
// restart policies are applied in the background, as dockerd does on start.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Root == "" || cfg.RuntimeRoot == "" {
		return nil, fmt.Errorf("containers: Root and RuntimeRoot are required")
	}
	if cfg.Images == nil || cfg.RootFS == nil {
		return nil, fmt.Errorf("containers: an image lookup and a rootfs store are required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth"
	}
	if cfg.Events == nil {
		cfg.Events = evbus.New()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := CheckLogOpts(cfg.LogOpts); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, cfg.RuntimeRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containers: %w", err)
		}
	}
	m := &Manager{cfg: cfg, log: cfg.Log, byID: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Exec{}}
	boot, err := m.restore(ctx)
	if err != nil {
		return nil, err
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		m.restartOnBoot(boot)
	}()
	return m, nil
}

// CheckLogOpts validates default json-file log options (Config.LogOpts).
func CheckLogOpts(opts map[string]string) error {
	if _, err := parseLogOptions(ctr.LogConfig{Type: "json-file", Config: opts}); err != nil {
		return fmt.Errorf("default log options: %w", err)
	}
	return nil
}

func newContainer(dir string, rec record) *Container {
	c := &Container{dir: dir, rec: rec, execs: map[string]*Exec{}, changed: make(chan struct{}),
		removed: make(chan struct{}), attach: newAttachers()}
	c.restart = newRestartManager(rec.HostConfig.RestartPolicy, rec.RestartCount)
	return c
}

// restore loads every container record and settles those that were running.
// It returns the containers whose restart policy may apply now.
func (m *Manager) restore(ctx context.Context) ([]*Container, error) {
	entries, err := os.ReadDir(m.cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var boot []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(m.cfg.Root, e.Name())
		if strings.HasPrefix(e.Name(), trashPrefix) {
			os.RemoveAll(dir) // removed, not yet deleted, when the agent stopped
			continue
		}
		rec, err := loadRecord(dir)
		if err != nil {
			m.log.Error("skipping unreadable container", "dir", dir, "err", err)
			continue
		}
		c := newContainer(dir, rec)
		if rec.State.Running() {
			m.reapLeftover(c)
		}
		m.byID[rec.ID] = c
		m.names[rec.Name] = rec.ID
		if c.rec.HostConfig.AutoRemove && !c.rec.State.Running() && c.rec.HasBeenStartedBefore {
			if err := m.removeLocked(c, false); err != nil {
				m.log.Error("auto-remove on start", "container", rec.ID, "err", err)
			}
			continue
		}
		boot = append(boot, c)
	}
	m.cleanRuntimeRoot()
	return boot, nil
}

// reapLeftover kills what is left of a container whose agent died, and
// records it as exited: the agent owns container processes directly, so a
// container cannot outlive it.
func (m *Manager) reapLeftover(c *Container) {
	code := killLeftover(m.cfg.RuntimeRoot, c.rec.ID, m.log)
	if err := m.cfg.RootFS.Unmount(c.rec.ID); err != nil {
		m.log.Warn("unmount leftover rootfs", "container", c.rec.ID, "err", err)
	}
	c.rec.State = State{Status: ctr.StateExited, ExitCode: code, StartedAt: c.rec.State.StartedAt,
		FinishedAt: time.Now().UTC(), OOMKilled: false}
	if err := c.saveLocked(); err != nil {
		m.log.Error("save state", "container", c.rec.ID, "err", err)
	}
	m.log.Info("container was running when the engine stopped; marked exited", "container", c.rec.ID, "exitCode", code)
}

// restartOnBoot applies restart policies to containers restored at start.
func (m *Manager) restartOnBoot(cs []*Container) {
	var wg sync.WaitGroup
	for _, c := range cs {
		c.mu.Lock()
		rec := c.rec
		c.mu.Unlock()
		if !rec.HasBeenStartedBefore || rec.State.Running() {
			continue
		}
		ok, _ := c.restart.shouldRestart(rec.State.ExitCode, rec.HasBeenManuallyStopped, rec.State.FinishedAt.Sub(rec.State.StartedAt))
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.startPolicy(c); err != nil {
				m.log.Error("restart policy on engine start", "container", rec.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

// Get finds a container by full ID, name, or unique ID prefix.
func (m *Manager) Get(ref string) (*Container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.getLocked(ref)
}

func (m *Manager) getLocked(ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.InvalidArgument("no container name or ID given")
	}
	if c, ok := m.byID[ref]; ok {
		return c, nil
	}
	if id, ok := m.names[strings.TrimPrefix(ref, "/")]; ok {
		if c, ok := m.byID[id]; ok { // absent while a create holds the name
			return c, nil
		}
	}
	var found *Container
	for id, c := range m.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.NotFound("No such container: %s (multiple IDs found with provided prefix)", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	return found, nil
}

// All returns every container, newest first.
func (m *Manager) All() []*Container {
	m.mu.Lock()
	out := slices.Collect(maps.Values(m.byID))
	m.mu.Unlock()
	recs := make(map[*Container]time.Time, len(out))
	for _, c := range out {
		recs[c] = c.snapshot().Created
	}
	slices.SortFunc(out, func(a, b *Container) int { return recs[b].Compare(recs[a]) })
	return out
}

// ImageUsers returns the IDs of running and stopped containers created
// from imageID, so the image store can refuse to remove an image in use.
func (m *Manager) ImageUsers(imageID string) (running, stopped []string) {
	for _, c := range m.All() {
		if r := c.snapshot(); r.ImageID == imageID {
			if r.State.Running() {
				running = append(running, r.ID)
			} else {
				stopped = append(stopped, r.ID)
			}
		}
	}
	return running, stopped
}

// Counts returns how many containers are running, paused and stopped.
func (m *Manager) Counts() (running, paused, stopped int) {
	for _, c := range m.All() {
		switch c.snapshot().State.Status {
		case ctr.StateRunning, ctr.StateRestarting:
			running++
		case ctr.StatePaused:
			paused++
		default:
			stopped++
		}
	}
	return
}

// CreateOptions is a container create request.
type CreateOptions struct {
	Name             string
	Config           *ctr.Config
	HostConfig       *ctr.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Platform         string // "os/arch[/variant]"; empty for the engine's own
}

// Create makes a container from an image: it merges the image config into
// the request, reserves the name, prepares the root filesystem and saves the
// record. It returns the new ID and dockerd-style warnings.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (string, []string, error) {
	if opts.Config == nil {
		return "", nil, errdefs.InvalidArgument("config cannot be empty in order to create a container")
	}
	cfg := *opts.Config
	hc := &ctr.HostConfig{}
	if opts.HostConfig != nil {
		h := *opts.HostConfig
		hc = &h
	}
	if cfg.Image == "" {
		return "", nil, errdefs.InvalidArgument("no image specified: config.Image is required")
	}
	name := strings.TrimPrefix(opts.Name, "/")
	if name != "" && !validName.MatchString(name) {
		return "", nil, errdefs.InvalidArgument("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if err := CheckCreate(&cfg, hc); err != nil {
		return "", nil, err
	}
	img, err := m.cfg.Images(ctx, cfg.Image)
	if err != nil {
		return "", nil, err
	}
	if err := checkPlatform(opts.Platform, img); err != nil {
		return "", nil, err
	}
	mergeImageConfig(&cfg, img)
	path, args, err := command(&cfg)
	if err != nil {
		return "", nil, err
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Type == "json-file" && len(m.cfg.LogOpts) > 0 {
		// The engine's defaults fill what the container left unset, as
		// dockerd merges its --log-opt values.
		opts := maps.Clone(hc.LogConfig.Config)
		if opts == nil {
			opts = map[string]string{}
		}
		for k, v := range m.cfg.LogOpts {
			if _, ok := opts[k]; !ok {
				opts[k] = v
			}
		}
		if _, err := parseLogOptions(ctr.LogConfig{Type: "json-file", Config: opts}); err != nil {
			return "", nil, err
		}
		hc.LogConfig.Config = opts
	}
	nc, err := m.checkNetworking(hc, opts.NetworkingConfig, cfg.ExposedPorts)
	if err != nil {
		return "", nil, err
	}
	plans, err := m.planMounts(&cfg, hc)
	if err != nil {
		return "", nil, err
	}
	if d := hc.VolumeDriver; d != "" && d != "local" {
		// Volumes come from the local driver only; dockerd looks for a
		// volume plugin by this name and finds none.
		for _, p := range plans {
			if p.typ == mount.TypeVolume {
				return "", nil, errdefs.NotFound("error looking up volume plugin %s: plugin %q not found", d, d)
			}
		}
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = ctr.RestartPolicyDisabled
	}
	applyHostDefaults(hc)

	if hc.UTSMode.IsHost() && cfg.Hostname != "" {
		return "", nil, errdefs.InvalidArgument("conflicting options: hostname and the UTS mode")
	}
	id := stringid.GenerateRandomID()
	if cfg.Hostname == "" {
		if hc.NetworkMode.IsHost() || hc.UTSMode.IsHost() {
			cfg.Hostname, _ = os.Hostname()
		} else {
			cfg.Hostname = id[:12]
		}
	}
	warnings, err := checkResources(hc)
	if err != nil {
		return "", nil, err
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 && !swapAccounting() {
		warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
	}

	m.mu.Lock()
	if m.shuttingDown {
		m.mu.Unlock()
		return "", nil, errdefs.Unavailable("the engine is shutting down")
	}
	if name == "" {
		name = randomName(func(n string) bool { _, ok := m.names[n]; return ok })
	} else if other, ok := m.names[name]; ok {
		m.mu.Unlock()
		return "", nil, errdefs.Conflict("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	m.names[name] = id // reserved while the rootfs is prepared
	m.mu.Unlock()

	release := func() {
		m.mu.Lock()
		delete(m.names, name)
		m.mu.Unlock()
	}
	if err := m.normalizeLinks(hc, name); err != nil {
		release()
		return "", nil, err
	}
	dir := filepath.Join(m.cfg.Root, id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		release()
		return "", nil, fmt.Errorf("create container: %w", err)
	}
	rootfs, err := m.cfg.RootFS.Prepare(id, img.ChainID)
	if err != nil {
		os.RemoveAll(dir)
		release()
		return "", nil, fmt.Errorf("create container: rootfs: %w", err)
	}
	if err := checkWorkdir(rootfs, cfg.WorkingDir); err != nil {
		m.cfg.RootFS.Remove(id)
		os.RemoveAll(dir)
		release()
		return "", nil, err
	}
	var mps []ctr.MountPoint
	if len(plans) > 0 {
		if mps, err = m.createMounts(plans, rootfs); err != nil {
			m.cfg.RootFS.Remove(id)
			os.RemoveAll(dir)
			release()
			return "", nil, err
		}
	}
	rec := record{
		ID: id, Name: name, Created: time.Now().UTC(), Path: path, Args: args,
		Config: &cfg, HostConfig: hc, NetworkingConfig: nc,
		ImageID: img.ID, ChainID: img.ChainID, Platform: "linux", Mounts: mps,
		State: State{Status: ctr.StateCreated},
	}
	c := newContainer(dir, rec)
	c.mu.Lock()
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		m.cfg.RootFS.Remove(id)
		os.RemoveAll(dir)
		release()
		m.removeAnonymousVolumes(mps)
		return "", nil, err
	}
	m.mu.Lock()
	m.byID[id] = c
	m.mu.Unlock()
	m.event(c, events.ActionCreate, nil)
	return id, warnings, nil
}

// mergeImageConfig fills what the request left empty from the image config,
// as dockerd's create does.
func mergeImageConfig(cfg *ctr.Config, img *image.Image) {
	if img.Config == nil {
		return
	}
	ic := img.Config.Config
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	cfg.Env = mergeImageEnv(cfg.Env, ic.Env)
	labels := maps.Clone(ic.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, cfg.Labels)
	cfg.Labels = labels
	// --entrypoint "" arrives as [""]: it resets the image's entrypoint.
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = []string{}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = ic.Entrypoint
		}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	for p := range ic.ExposedPorts {
		port, err := network.ParsePort(p)
		if err != nil {
			continue
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	for v := range ic.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	if h := ic.Healthcheck; h != nil {
		mergeHealthcheck(cfg, &ctr.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries})
	}
	if len(cfg.Shell) == 0 {
		cfg.Shell = ic.Shell
	}
}

// command is the process to run: the entrypoint followed by the command.
func command(cfg *ctr.Config) (string, []string, error) {
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) == 0 || argv[0] == "" {
		return "", nil, errdefs.InvalidArgument("no command specified")
	}
	return argv[0], argv[1:], nil
}

func checkPlatform(p string, img *image.Image) error {
	if p == "" || img.Config == nil {
		return nil
	}
	parts := strings.Split(p, "/")
	if parts[0] != "linux" {
		return errdefs.InvalidArgument("platform %q is not supported: this engine runs linux containers", p)
	}
	if len(parts) > 1 && img.Config.Architecture != "" && parts[1] != img.Config.Architecture {
		return errdefs.NotFound("image with reference %s was found but its platform (%s/%s) does not match the specified platform (%s)",
			img.ID, img.Config.OS, img.Config.Architecture, p)
	}
	return nil
}

// Rename gives a container a new name.
func (m *Manager) Rename(ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if _, err := m.Get(ref); err != nil {
		return err // a missing container first, as dockerd checks
	}
	if newName == "" {
		return errdefs.InvalidArgument("Neither old nor new names may be empty")
	}
	if !validName.MatchString(newName) {
		return errdefs.InvalidArgument("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	m.mu.Lock()
	c, err := m.getLocked(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	c.mu.Lock()
	old := c.rec.Name
	if old == newName {
		c.mu.Unlock()
		m.mu.Unlock()
		return errdefs.InvalidArgument("Renaming a container with the same name as its current name")
	}
	if other, ok := m.names[newName]; ok {
		c.mu.Unlock()
		m.mu.Unlock()
		return errdefs.Conflict("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, other)
	}
	c.rec.Name = newName
	if err := c.saveLocked(); err != nil {
		c.rec.Name = old
		c.mu.Unlock()
		m.mu.Unlock()
		return err
	}
	delete(m.names, old)
	m.names[newName] = c.rec.ID
	c.mu.Unlock()
	m.mu.Unlock()
	m.event(c, events.ActionRename, map[string]string{"oldName": "/" + old})
	return nil
}

// RemoveOptions is a container remove request.
type RemoveOptions struct {
	Force         bool // kill it first if it is running
	RemoveVolumes bool
}

// Remove deletes a container, its writable layer, logs and record.
func (m *Manager) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	st, name, gone := c.rec.State, c.rec.Name, c.gone
	c.mu.Unlock()
	if gone {
		return errdefs.NotFound("No such container: %s", ref)
	}
	if st.Running() {
		if !opts.Force {
			if st.Status == ctr.StatePaused {
				return errdefs.Conflict("cannot remove container \"/%s\": container is paused and must be unpaused first", name)
			}
			return errdefs.Conflict("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", name)
		}
		c.restart.stop()
		if err := m.killAndWait(ctx, c); err != nil {
			return fmt.Errorf("cannot remove container \"/%s\": could not kill: %w", name, err)
		}
	}
	m.mu.Lock()
	err = m.removeLocked(c, true)
	m.mu.Unlock()
	if err == nil && (opts.RemoveVolumes || c.rec.HostConfig.AutoRemove) {
		// As dockerd: rm -v and --rm take the anonymous volumes along.
		m.removeAnonymousVolumes(c.snapshot().Mounts)
	}
	return err
}

// removeLocked deletes a stopped container. Call with m.mu held.
func (m *Manager) removeLocked(c *Container, publish bool) error {
	began := time.Now()
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return nil
	}
	id, name := c.rec.ID, c.rec.Name
	c.gone = true
	c.restart.stop()
	execs := slices.Collect(maps.Keys(c.execs))
	c.mu.Unlock()
	if err := m.cfg.RootFS.Remove(id); err != nil {
		c.mu.Lock()
		c.gone = false
		c.rec.State.Status = ctr.StateDead
		c.rec.State.Error = err.Error()
		serr := m.saveLogged(c)
		c.notifyLocked()
		c.mu.Unlock()
		return errors.Join(fmt.Errorf("remove container %s: rootfs: %w", id, err), serr)
	}
	// The directory (record, logs) is renamed away at once and deleted in
	// the background; a crash leaves it to the sweep in restore.
	trash := filepath.Join(m.cfg.Root, trashPrefix+id)
	if err := os.Rename(c.dir, trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		if err := os.RemoveAll(trash); err != nil {
			m.log.Warn("delete removed container's files", "container", id, "err", err)
		}
	}()
	delete(m.byID, id)
	if m.names[name] == id {
		delete(m.names, name)
	}
	for _, e := range execs {
		delete(m.execs, e)
	}
	if publish {
		m.event(c, events.ActionDestroy, nil)
	}
	c.mu.Lock()
	close(c.removed)
	c.notifyLocked()
	c.mu.Unlock()
	m.log.Debug("container removed", "container", id, "took", time.Since(began))
	return nil
}

// Close stops every running container in parallel, each with its own stop
// timeout, and waits for monitors and pending restarts to finish. Restart
// policies are suspended, not forgotten: they apply on the next start.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.shuttingDown = true
	cs := slices.Collect(maps.Values(m.byID))
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		c.restart.stop()
		if !c.snapshot().State.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.stop(ctx, c, StopOptions{}, false); err != nil && !errdefs.IsNotModified(err) {
				m.log.Error("stop on shutdown", "container", c.rec.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	// Created containers keep their root filesystem mounted from create to
	// start; an engine that stops takes those mounts down with it.
	for _, c := range cs {
		if !c.snapshot().State.Running() {
			if err := m.cfg.RootFS.Unmount(c.rec.ID); err != nil {
				m.log.Warn("unmount rootfs on shutdown", "container", c.rec.ID, "err", err)
			}
		}
	}
	done := make(chan struct{})
	go func() { m.bg.Wait(); close(done) }()
	select {
	case <-done:
		m.removeCgroupParent()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("containers: shutdown: %w", ctx.Err())
	}
}

// removeCgroupParent removes the engine's cgroup parent from every
// hierarchy once its containers are gone, so that engines started and
// stopped on a host (the native driver, tests) leave no cgroups behind.
// rmdir only removes an empty cgroup: a container still running under the
// parent keeps it.
func (m *Manager) removeCgroupParent() {
	if filepath.Clean(m.cfg.CgroupParent) == "/" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", m.cfg.CgroupParent))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", m.cfg.CgroupParent))
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Debug("cgroup parent kept", "dir", d, "err", err)
		}
	}
}

// event publishes a container event with dockerd's attributes: name, image,
// the container's labels, plus extra.
func (m *Manager) event(c *Container, action events.Action, extra map[string]string) {
	c.mu.Lock()
	attrs := make(map[string]string, len(c.rec.Config.Labels)+2+len(extra))
	maps.Copy(attrs, c.rec.Config.Labels)
	attrs["name"] = c.rec.Name
	attrs["image"] = c.rec.Config.Image
	id := c.rec.ID
	c.mu.Unlock()
	maps.Copy(attrs, extra)
	m.cfg.Events.Publish(events.ContainerEventType, action, id, attrs)
}

func (c *Container) logPath() string { return filepath.Join(c.dir, c.rec.ID+"-json.log") }

// LogPath is where the container's json-file log lives.
func (c *Container) LogPath() string { return c.logPath() }

func numCPU() int { return runtime.NumCPU() }

func swapAccounting() bool {
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	if err == nil {
		return true
	}
	_, err = os.Stat("/sys/fs/cgroup/memory.swap.max")
	if err == nil {
		return true
	}
	// cgroup v2: the root has no swap file, but children do when enabled.
	return strings.Contains(readFileString("/sys/fs/cgroup/cgroup.subtree_control"), "memory")
}

func readFileString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
