//go:build linux

package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// record is what is kept on disk for a container, in ROOT/<id>/config.json.
// Config is the create request merged with the image config, as dockerd
// stores it; Config.Image keeps the reference the user gave.
type record struct {
	ID               string
	Name             string // without the leading "/"
	Created          time.Time
	Path             string
	Args             []string
	Config           *ctr.Config
	HostConfig       *ctr.HostConfig
	NetworkingConfig *network.NetworkingConfig `json:",omitempty"`
	ImageID          string                    // "sha256:…"
	ChainID          string                    // the image's top layer chain; "" for an empty image
	Platform         string
	Mounts           []ctr.MountPoint `json:",omitempty"` // volumes and bind mounts, made at create
	State            State
	RestartCount     int
	// HasBeenStartedBefore and HasBeenManuallyStopped drive restart
	// policies on agent start, as in dockerd.
	HasBeenStartedBefore   bool
	HasBeenManuallyStopped bool
}

// State is a container's lifecycle state as inspect reports it.
type State struct {
	Status     ctr.ContainerState
	Pid        int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *ctr.Health `json:",omitempty"` // with a health check (health.go)
}

// Running reports whether the container has a live process (or is between
// two runs of a restart policy), which is what dockerd calls running.
func (s State) Running() bool {
	return s.Status == ctr.StateRunning || s.Status == ctr.StatePaused || s.Status == ctr.StateRestarting
}

// Container is one container known to the manager. Its exported methods
// are safe for concurrent use; lifecycle operations go through the Manager.
type Container struct {
	dir string

	// opMu serialises lifecycle operations (start, stop, restart, remove,
	// pause); kill and exec do not take it, so they can interrupt a stop.
	opMu sync.Mutex

	mu      sync.Mutex // guards everything below
	rec     record
	run     *run             // the live process; nil when not running
	execs   map[string]*Exec // exec instances of this container
	seq     int              // exec creation counter, for pruning and order
	changed chan struct{}    // closed and replaced on every state change
	exits   int              // number of exits seen, for next-exit waits
	removed chan struct{}    // closed once the container is removed
	gone    bool             // removed (or being removed)
	restart *restartManager  // restart policy state across runs
	attach  *attachers       // clients attached to the output streams
	logs    *logWriter       // json-file logger of the current run
}

// ID is the container's full ID.
func (c *Container) ID() string { return c.rec.ID }

// snapshot returns a copy of the record, safe to read without the lock.
func (c *Container) snapshot() record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// notifyLocked wakes everyone waiting for a state change. Call with c.mu held.
func (c *Container) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// saveLocked persists the record atomically. Call with c.mu held.
func (c *Container) saveLocked() error {
	b, err := json.Marshal(&c.rec)
	if err != nil {
		return fmt.Errorf("container %s: encode state: %w", c.rec.ID, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(c.dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("container %s: save state: %w", c.rec.ID, err)
	}
	return nil
}

// saveLogged is saveLocked for state changes that happen whatever the disk
// says (an exit, a stop): a failure is logged, and returned for the caller
// to report. Call with c.mu held.
func (m *Manager) saveLogged(c *Container) error {
	err := c.saveLocked()
	if err != nil {
		m.log.Error("save state", "container", c.rec.ID, "err", err)
	}
	return err
}

func loadRecord(dir string) (record, error) {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	if rec.Config == nil || rec.HostConfig == nil || rec.ID == "" {
		return rec, fmt.Errorf("%s: incomplete container record", dir)
	}
	return rec, nil
}
