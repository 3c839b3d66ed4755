package desktop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// MachineStatus is what Home and the tray show about the machine.
type MachineStatus struct {
	Status hostapi.Status `json:"status"`
	// Hostd is true when a host agent answers; without one the machine is
	// shown stopped, unless an engine answers at an explicit DOCKER_HOST.
	Hostd bool `json:"hostd"`
	// External marks an engine that hostd does not manage (DOCKER_HOST set,
	// e.g. the native engine in development): it cannot be stopped from here.
	External bool       `json:"external"`
	Engine   EngineInfo `json:"engine"`
}

// EngineInfo is the engine's /version and /info, in brief.
type EngineInfo struct {
	Answering         bool   `json:"answering"`
	Version           string `json:"version"`
	APIVersion        string `json:"apiVersion"`
	OS                string `json:"os"`
	Arch              string `json:"arch"`
	Kernel            string `json:"kernel"`
	CPUs              int    `json:"cpus"`
	MemTotal          int64  `json:"memTotal"`
	Containers        int    `json:"containers"`
	ContainersRunning int    `json:"containersRunning"`
	Images            int    `json:"images"`
}

// Machine starts, stops and reports the VM (through hostd).
type Machine struct{ b *Backend }

// Status returns the machine's current status.
func (m *Machine) Status() MachineStatus { return m.b.refreshMachine(m.b.ctx) }

// Start boots the machine and returns once the engine answers. Without a
// running hostd it launches `berth hostd` first.
func (m *Machine) Start() (MachineStatus, error) {
	b := m.b
	ctx, cancel := b.opCtx(3 * time.Minute)
	defer cancel()
	if _, err := b.hostd.Status(ctx); errors.Is(err, hostapi.ErrNotRunning) {
		if b.explicit && b.engineInfo(ctx).Answering {
			return b.refreshMachine(ctx), nil // an external engine is already up
		}
		b.setMachineState(hostapi.Starting, "")
		if err := b.launchHostd(ctx); err != nil {
			b.setMachineState(hostapi.Error, err.Error())
			return b.machineSnapshot(), err
		}
	}
	if _, err := b.hostd.Start(ctx); err != nil {
		st := b.refreshMachine(ctx)
		return st, fmt.Errorf("start the machine: %w", err)
	}
	b.kickEngine()
	return b.refreshMachine(ctx), nil
}

// Stop shuts the machine down.
func (m *Machine) Stop() (MachineStatus, error) {
	b := m.b
	ctx, cancel := b.opCtx(2 * time.Minute)
	defer cancel()
	if _, err := b.hostd.Stop(ctx, false); err != nil {
		if errors.Is(err, hostapi.ErrNotRunning) && b.explicit {
			err = errors.New("this engine is not managed by Berth's host agent (DOCKER_HOST is set)")
		}
		return b.refreshMachine(ctx), fmt.Errorf("stop the machine: %w", err)
	}
	return b.refreshMachine(ctx), nil
}

// Restart stops and starts the machine.
func (m *Machine) Restart() (MachineStatus, error) {
	b := m.b
	ctx, cancel := b.opCtx(4 * time.Minute)
	defer cancel()
	if _, err := b.hostd.Restart(ctx); err != nil {
		if errors.Is(err, hostapi.ErrNotRunning) {
			return m.Start()
		}
		return b.refreshMachine(ctx), fmt.Errorf("restart the machine: %w", err)
	}
	b.kickEngine()
	return b.refreshMachine(ctx), nil
}

// Quit ends hostd, stopping the VM first when stopVM is set (the tray's
// Quit asks the user which).
func (m *Machine) Quit(stopVM bool) error {
	ctx, cancel := m.b.opCtx(2 * time.Minute)
	defer cancel()
	b := m.b
	err := b.hostd.Shutdown(ctx, stopVM)
	if errors.Is(err, hostapi.ErrNotRunning) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("quit the host agent: %w", err)
	}
	// hostd answers before it stops the machine and exits: wait until its
	// socket goes quiet, so the window (and a quitting tray) sees it gone.
	for {
		if _, err := b.hostd.Status(ctx); errors.Is(err, hostapi.ErrNotRunning) {
			b.refreshMachine(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("quit the host agent: still running: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// refreshMachine asks hostd (else the engine) and publishes the result.
func (b *Backend) refreshMachine(ctx context.Context) MachineStatus {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := b.hostd.Status(ctx)
	ms := MachineStatus{Status: st, Hostd: err == nil}
	if err != nil {
		ms.Status = hostapi.Status{State: hostapi.Stopped, DockerHost: b.dockerHost}
		if !errors.Is(err, hostapi.ErrNotRunning) {
			ms.Status.State, ms.Status.Error = hostapi.Error, err.Error()
		}
	}
	if ms.Status.State == hostapi.Running || !ms.Hostd {
		ms.Engine = b.engineInfo(ctx)
	}
	if !ms.Hostd && ms.Engine.Answering {
		ms.External = true
		ms.Status.State = hostapi.Running
		ms.Status.EngineVersion = ms.Engine.Version
		ms.Status.CPUs, ms.Status.MemoryMiB = ms.Engine.CPUs, int(ms.Engine.MemTotal>>20)
	}
	b.publishMachine(ms)
	return ms
}

func (b *Backend) publishMachine(ms MachineStatus) {
	b.mu.Lock()
	b.machine = ms
	b.mu.Unlock()
	b.emit.Emit(EventMachine, ms)
}

func (b *Backend) machineSnapshot() MachineStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.machine
}

func (b *Backend) setMachineState(s hostapi.State, msg string) {
	ms := b.machineSnapshot()
	ms.Status.State, ms.Status.Error = s, msg
	b.publishMachine(ms)
}

// engineInfo reads /version and /info; Answering is false when it is down.
func (b *Backend) engineInfo(ctx context.Context) EngineInfo {
	v, err := b.docker.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return EngineInfo{}
	}
	ei := EngineInfo{Answering: true, Version: v.Version, APIVersion: v.APIVersion, OS: v.Os, Arch: v.Arch}
	if info, err := b.docker.Info(ctx, client.InfoOptions{}); err == nil {
		in := info.Info
		ei.CPUs, ei.MemTotal, ei.Kernel = in.NCPU, in.MemTotal, in.KernelVersion
		ei.Containers, ei.ContainersRunning, ei.Images = in.Containers, in.ContainersRunning, in.Images
	}
	return ei
}

// watchMachine follows hostd's /events. While no hostd answers it tries
// its socket again every few seconds (a refused unix connect costs
// microseconds); the engine watcher reports the engine coming and going.
func (b *Backend) watchMachine(ctx context.Context) {
	first := true
	for {
		wait := 3 * time.Second
		ch, err := b.hostd.Events(ctx)
		if err == nil {
			for st := range ch {
				ms := MachineStatus{Status: st, Hostd: true}
				if st.State == hostapi.Running {
					ms.Engine = b.engineInfo(ctx)
					b.kickEngine()
				}
				b.publishMachine(ms)
			}
			// hostd ends its streams when it begins to shut down and
			// answers /status a little longer: look again soon.
			wait = 250 * time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		// The stream ended, or there is none: publish what hostd (or the
		// engine alone) says, unless the window already shows no hostd.
		if first || b.machineSnapshot().Hostd {
			first = false
			b.refreshMachine(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-b.kickHd:
		case <-time.After(wait):
		}
	}
}

// kickMachine makes the machine watcher dial hostd now (it was launched).
func (b *Backend) kickMachine() {
	select {
	case b.kickHd <- struct{}{}:
	default:
	}
}

// launchHostd starts `berth hostd` detached from the window (it outlives
// it) and waits until its socket answers.
func (b *Backend) launchHostd(ctx context.Context) error {
	bin, err := b.findBerth()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.paths.LogsDir(), 0o700); err != nil {
		return fmt.Errorf("start hostd: %w", err)
	}
	logPath := filepath.Join(b.paths.LogsDir(), "hostd-launch.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start hostd: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "hostd")
	cmd.Env = append(os.Environ(), "BERTH_HOME="+b.paths.Home)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s hostd: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := b.hostd.Status(ctx); err == nil {
			b.kickMachine()
			return nil
		}
		select {
		case err := <-exited:
			tail, _ := os.ReadFile(logPath)
			return fmt.Errorf("berth hostd exited (%v): %s", err, lastLines(string(tail), 5))
		case <-deadline.C:
			return fmt.Errorf("berth hostd did not answer on %s within 30s (see %s)", b.paths.HostdSocket(), logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// findBerth finds the berth CLI: next to this executable, else on PATH.
func (b *Backend) findBerth() (string, error) {
	if b.berthBin != "" {
		return b.berthBin, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "berth")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("berth")
	if err != nil {
		return "", errors.New("cannot find the berth command (next to berth-desktop or on PATH) to start the host agent")
	}
	return p, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
