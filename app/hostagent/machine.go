package hostagent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// Start boots the machine, or joins the boot in flight, and returns once
// the engine answers. A caller that gives up (ctx) does not stop the boot.
func (a *Agent) Start(ctx context.Context) (hostapi.Status, error) {
	for {
		a.mu.Lock()
		switch {
		case a.st.State == hostapi.Running:
			st := a.statusLocked()
			a.mu.Unlock()
			return st, nil
		case a.stopping != nil:
			ch := a.stopping
			a.mu.Unlock()
			if err := wait(ctx, ch); err != nil {
				return a.Status(), err
			}
			continue
		}
		b := a.booting
		if b == nil {
			b = a.beginBoot(0, false)
		}
		a.mu.Unlock()
		if err := wait(ctx, b.done); err != nil {
			return a.Status(), err
		}
		if b.err != nil {
			return a.Status(), b.err
		}
	}
}

func wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop shuts the machine down (at once with force); a boot in flight is
// cancelled first.
func (a *Agent) Stop(ctx context.Context, force bool) error {
	a.mu.Lock()
	if b := a.booting; b != nil {
		b.stopped = true
		b.cancel()
		a.mu.Unlock()
		<-b.done // a cancelled boot ends promptly: the driver kills what it started
		a.mu.Lock()
	}
	if ch := a.stopping; ch != nil {
		a.mu.Unlock()
		return wait(ctx, ch)
	}
	drv := a.drv
	if a.st.State != hostapi.Running || drv == nil {
		if a.st.State == hostapi.Error {
			a.setState(hostapi.Stopped, "")
		}
		a.mu.Unlock()
		return nil
	}
	a.stopping = make(chan struct{})
	a.endRunLocked()
	a.setState(hostapi.Stopping, "")
	a.mu.Unlock()

	a.log.Info("stopping the machine", "force", force)
	err := drv.Stop(ctx, force)
	if err != nil {
		err = fmt.Errorf("stop the machine: %w", err)
	}
	a.mu.Lock()
	a.setState(hostapi.Stopped, "")
	close(a.stopping)
	a.stopping = nil
	a.mu.Unlock()
	a.log.Info("machine stopped", "err", err)
	return err
}

// Restart stops the machine and starts it again (with the saved settings).
func (a *Agent) Restart(ctx context.Context) (hostapi.Status, error) {
	if err := a.Stop(ctx, false); err != nil {
		return a.Status(), err
	}
	return a.Start(ctx)
}

// beginBoot starts a boot after delay; restart marks a boot after a
// crash. Call with a.mu held.
func (a *Agent) beginBoot(delay time.Duration, restart bool) *boot {
	ctx, cancel := context.WithTimeout(a.ctx, delay+bootTimeout)
	b := &boot{cancel: cancel, done: make(chan struct{}), restart: restart}
	a.booting = b
	if !restart {
		a.crashes = nil // the user asked: the crash count starts over
	}
	a.gen++
	gen := a.gen
	a.st.Boot = nil
	a.setState(hostapi.Starting, a.st.Error)
	go a.runBoot(ctx, b, gen, delay)
	return b
}

func (a *Agent) runBoot(ctx context.Context, b *boot, gen uint64, delay time.Duration) {
	defer b.cancel()
	if delay > 0 {
		a.log.Info("restarting the machine", "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	var err error
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	} else {
		err = a.bootMachine(ctx)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.booting = nil
	defer close(b.done)
	if err == nil {
		a.st.StartedAt = time.Now()
		lastCrash := ""
		if b.restart {
			lastCrash = a.st.Error // shown while running: why it restarted
		}
		a.setState(hostapi.Running, lastCrash)
		runCtx, cancel := context.WithCancel(a.ctx)
		a.run = cancel
		go a.watchMachine(runCtx, gen)
		a.startPortsLocked(runCtx)
		return
	}
	if b.stopped {
		err = errors.New("start cancelled: the machine was stopped")
	}
	b.err = err
	a.log.Error("machine did not start", "err", err)
	if b.restart && !b.stopped && a.ctx.Err() == nil {
		a.afterCrashLocked("restart failed: " + err.Error())
		return
	}
	a.setState(hostapi.Error, err.Error())
}

// bootMachine starts the driver with the saved settings and fills the
// status with what the running machine reports.
func (a *Agent) bootMachine(ctx context.Context) error {
	s, err := config.Load(a.paths)
	if err != nil {
		return err
	}
	name := s.Driver
	if name == "" {
		name = a.o.DefaultDriver
	}
	a.mu.Lock()
	drv := a.drv
	if drv == nil || a.drvName != name {
		a.mu.Unlock()
		drv, err = a.o.NewDriver(name, a.log.With("driver", name))
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.drv, a.drvName = drv, name
	}
	a.setResources(s)
	a.st.Driver = name
	a.publishLocked()
	a.mu.Unlock()

	m, err := a.machine(s)
	if err != nil {
		return err
	}
	// The start's phases go to the status as they come.
	clock := &driver.BootClock{}
	clock.OnChange = func() {
		phases := bootPhases(clock.Phases(time.Now()))
		a.mu.Lock()
		a.st.Boot = phases
		a.publishLocked()
		a.mu.Unlock()
	}
	m.Boot = clock
	rotateLog(consoleLog(m.StateDir), 8<<20)
	t0 := time.Now()
	a.log.Info("starting the machine", "driver", name, "cpus", m.CPUs, "memoryMiB", m.MemoryMiB, "diskGiB", m.DiskGiB, "shares", len(m.Shares))
	if err := drv.Start(ctx, m); err != nil {
		return err
	}
	info := drv.Info()
	a.log.Info("machine running", "driver", name, "accel", info.Accel, "took", time.Since(t0).Round(time.Millisecond))

	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type version struct {
		v   string
		err error
	}
	verc := make(chan version, 1)
	go func() {
		v, err := engineVersion(vctx, drv)
		verc <- version{v, err}
	}()
	var h control.Health
	herr := errors.New("no guest")
	if !info.HostPorts {
		h, herr = a.waitGuestBoot(ctx, drv, clock)
	}
	ver := <-verc
	if ver.err != nil {
		a.log.Warn("engine version", "err", ver.err)
	}
	ds, _ := drv.Status(vctx)
	clock.Ready(time.Now())
	a.mu.Lock()
	a.booted = s
	a.st.MachinePID = ds.PID
	a.st.Accel, a.st.EngineVersion = info.Accel, ver.v
	a.st.Kernel, a.st.AgentVersion, a.st.DiskUsedBytes = "", "", 0
	if herr == nil {
		a.st.Kernel, a.st.AgentVersion, a.st.DiskUsedBytes = h.KernelVersion, h.AgentVersion, int64(h.Disk.UsedBytes)
	}
	a.mu.Unlock()
	return nil
}

// bootPhases puts a start's phases in the status's form.
func bootPhases(ps []driver.BootPhase) []hostapi.BootPhase {
	out := make([]hostapi.BootPhase, 0, len(ps))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, p := range ps {
		out = append(out, hostapi.BootPhase{Name: p.Name, Label: hostapi.PhaseLabel(p.Name), StartMS: ms(p.Start), EndMS: ms(p.End), Running: p.Running})
	}
	return out
}

// waitGuestBoot waits until the guest's network is up and its shared
// folders are mounted: the engine answers before that, but `docker pull`
// and `docker run -v` right after `berth start` must work. It returns the
// guest's last health report.
func (a *Agent) waitGuestBoot(ctx context.Context, drv driver.Driver, clock *driver.BootClock) (control.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		sent := time.Now()
		h, err := a.guestHealth(ctx, drv)
		if err == nil {
			clock.Guest(h, sent, time.Now())
		}
		if err == nil && !h.SharesPending && !h.NetworkPending {
			for _, sh := range h.Shares {
				if !sh.Mounted {
					a.log.Warn("shared folder not mounted", "folder", sh.Path, "err", sh.Error)
				}
			}
			return h, nil
		}
		select {
		case <-ctx.Done():
			a.log.Warn("the guest did not finish booting (network, shared folders)", "err", err)
			if err == nil {
				err = ctx.Err()
			}
			return h, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// endRunLocked stops what watches and serves the running machine.
func (a *Agent) endRunLocked() {
	if a.run != nil {
		a.run()
		a.run = nil
	}
	if a.ports != nil {
		a.ports.close()
		a.ports = nil
	}
}

// watchMachine notices the machine dying under the running boot gen and
// restarts it (with back-off), or gives up with the Error state.
func (a *Agent) watchMachine(ctx context.Context, gen uint64) {
	a.mu.Lock()
	drv := a.drv
	a.mu.Unlock()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ds, err := drv.Status(ctx)
		if err != nil || ds.State != driver.Stopped {
			continue
		}
		a.crashed(gen, ds.Exit)
		return
	}
}

func (a *Agent) crashed(gen uint64, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen || a.st.State != hostapi.Running {
		return // stopped on purpose meanwhile
	}
	if why == "" {
		why = "the machine stopped by itself"
	}
	a.log.Warn("machine died", "why", why)
	a.endRunLocked()
	a.afterCrashLocked(why)
}

// afterCrashLocked restarts the machine after a crash (or a failed
// restart), waiting as the policy says, or gives up when it crashed too
// often. Call with a.mu held.
func (a *Agent) afterCrashLocked(why string) {
	p := a.o.Restart
	now := time.Now()
	recent := a.crashes[:0]
	for _, c := range a.crashes {
		if now.Sub(c) < p.Window {
			recent = append(recent, c)
		}
	}
	a.crashes = append(recent, now)
	n := len(a.crashes)
	if n > p.MaxCrashes {
		a.setState(hostapi.Error, fmt.Sprintf("the machine died %d times in %v; not restarting it (last: %s)", n, p.Window, why))
		return
	}
	a.st.Restarts++
	a.st.Error = why
	a.beginBoot(p.Backoff[min(n-1, len(p.Backoff)-1)], true)
}

// machine is the driver.Machine for settings s.
func (a *Agent) machine(s config.Settings) (*driver.Machine, error) {
	m := &driver.Machine{
		Name:      machineName(a.paths),
		CPUs:      s.CPUs,
		MemoryMiB: s.MemoryMiB,
		DiskGiB:   s.DiskGiB,
		Kernel:    a.files.Kernel,
		Initrd:    a.files.Initrd,
		System:    a.files.System,
		Rootfs:    a.files.Rootfs,
		Agent:     a.files.Agent,
		StateDir:  a.paths.MachineDir(),
	}
	for _, r := range s.InsecureRegistries {
		m.EngineArgs = append(m.EngineArgs, "--insecure-registry="+r)
	}
	for _, mirror := range s.RegistryMirrors {
		m.EngineArgs = append(m.EngineArgs, "--registry-mirror="+mirror)
	}
	// Always given: the engine takes no proxy from its own environment
	// that the settings do not name (natively it inherits hostd's).
	m.EngineArgs = append(m.EngineArgs, "--http-proxy="+s.HTTPProxy, "--https-proxy="+s.HTTPSProxy)
	for _, e := range s.NoProxyList() {
		m.EngineArgs = append(m.EngineArgs, "--no-proxy="+e) // one each: commas cannot pass the kernel command line
	}
	if s.ContainerLogMiB > 0 {
		// Logs live on the VM's disk: bounded by default, as the user set.
		m.EngineArgs = append(m.EngineArgs, "--log-opt=max-size="+strconv.Itoa(s.ContainerLogMiB)+"m", "--log-opt=max-file=2")
	}
	m.Shares = shares(s.SharedFolders, a.log)
	return m, nil
}

// engineVersion asks the engine for its version.
func engineVersion(ctx context.Context, d transport.GuestDialer) (string, error) {
	c, err := engineClient(d)
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.ServerVersion(ctx, serverVersionOptions)
	if err != nil {
		return "", err
	}
	return v.Version, nil
}
