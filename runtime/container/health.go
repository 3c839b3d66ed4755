//go:build linux

package container

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Health checks, as dockerd runs them: while a container runs, its
// HEALTHCHECK (from the image, or run's --health-* flags) is executed in
// it like an exec every interval. Exit 0 is healthy; a failure or a probe
// over its timeout adds to a failing streak, and Retries failures in a row
// make the container unhealthy (failures inside the start period do not
// count). The status shows in ps ("Up 5 seconds (healthy)") and inspect
// (State.Health with the last results), and changes are health_status
// events. Owned by the build work.

// dockerd's defaults for what a HEALTHCHECK leaves unset.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthOutput      = 4096
	maxHealthLog         = 5
)

// probeCommand is the check's command; nil when there is none to run.
func probeCommand(cfg *ctr.Config) []string {
	h := cfg.Healthcheck
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		if len(h.Test) > 1 {
			return h.Test[1:]
		}
	case "CMD-SHELL":
		shell := cfg.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), strings.Join(h.Test[1:], " "))
	}
	return nil // NONE, or nothing to run
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startingHealth is a starting run's health: starting, with the log of the
// previous run kept; nil for a container without a check.
func startingHealth(cfg *ctr.Config, prev *ctr.Health) *ctr.Health {
	if probeCommand(cfg) == nil {
		return nil
	}
	h := &ctr.Health{Status: ctr.Starting, Log: []*ctr.HealthcheckResult{}}
	if prev != nil {
		h.Log = prev.Log
	}
	return h
}

// stoppedHealth is the health a run leaves behind: unhealthy, as dockerd
// reports a stopped container's.
func stoppedHealth(h *ctr.Health) *ctr.Health {
	if h == nil {
		return nil
	}
	out := *h
	out.Status = ctr.Unhealthy
	return &out
}

func healthStatus(h *ctr.Health) ctr.HealthStatus {
	if h == nil {
		return ctr.NoHealthcheck
	}
	return h.Status
}

// healthString is what ps adds after "Up …".
func healthString(h *ctr.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Status == ctr.Starting:
		return " (health: starting)"
	default:
		return " (" + string(h.Status) + ")"
	}
}

// monitorHealth probes c while run r lives.
func (m *Manager) monitorHealth(c *Container, r *run) {
	defer m.bg.Done()
	rec := c.snapshot()
	argv := probeCommand(rec.Config)
	if argv == nil {
		return
	}
	hc := rec.Config.Healthcheck
	interval := orDefault(hc.Interval, defaultProbeInterval)
	timeout := orDefault(hc.Timeout, defaultProbeTimeout)
	startInterval := orDefault(hc.StartInterval, defaultStartInterval)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	started := rec.State.StartedAt
	for {
		wait := interval
		inStart := hc.StartPeriod > 0 && time.Since(started) < hc.StartPeriod
		c.mu.Lock()
		starting := c.rec.State.Health != nil && c.rec.State.Health.Status == ctr.Starting
		c.mu.Unlock()
		if inStart && starting {
			wait = min(interval, startInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-r.exited:
			t.Stop()
			return
		case <-t.C:
		}
		c.mu.Lock()
		paused := c.rec.State.Status == ctr.StatePaused
		c.mu.Unlock()
		if paused {
			continue // a frozen container cannot run the probe; it is not failing either
		}
		res := m.probe(c, r, argv, timeout)
		select {
		case <-r.exited:
			return // the probe raced the exit: its result means nothing
		default:
		}
		inStart = hc.StartPeriod > 0 && res.Start.Sub(started) < hc.StartPeriod
		m.recordProbe(c, r, res, retries, inStart)
	}
}

// recordProbe applies one result to c's health and publishes a change.
func (m *Manager) recordProbe(c *Container, r *run, res *ctr.HealthcheckResult, retries int, inStart bool) {
	c.mu.Lock()
	cur := c.rec.State.Health
	if c.run != r || cur == nil {
		c.mu.Unlock()
		return
	}
	// A new value each time: readers hold the old one without the lock.
	h := &ctr.Health{Status: cur.Status, FailingStreak: cur.FailingStreak, Log: append([]*ctr.HealthcheckResult{}, cur.Log...)}
	c.rec.State.Health = h
	old := h.Status
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = ctr.Healthy
	} else if !(inStart && h.Status == ctr.Starting) {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = ctr.Unhealthy
		}
	}
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	status := h.Status
	if err := c.saveLocked(); err != nil {
		m.log.Warn("save health", "container", c.rec.ID, "err", err)
	}
	c.notifyLocked()
	c.mu.Unlock()
	if status != old {
		m.event(c, events.Action("health_status: "+string(status)), nil)
	}
}

// probe runs argv in the container as an exec would, keeping the first
// 4 KiB of its output; past timeout it is killed and counts as failed.
func (m *Manager) probe(c *Container, r *run, argv []string, timeout time.Duration) *ctr.HealthcheckResult {
	res := &ctr.HealthcheckResult{Start: time.Now(), ExitCode: -1}
	defer func() { res.End = time.Now() }()
	rec := c.snapshot()
	proc, err := m.execProcess(&rec, r, ctr.ExecCreateRequest{Cmd: argv})
	if err != nil {
		res.Output = err.Error()
		return res
	}
	pr := &run{proc: proc}
	s, err := pr.setupIO(false, false)
	if err != nil {
		res.Output = err.Error()
		return res
	}
	if err := r.lc.Run(proc); err != nil {
		s.closeAll()
		res.Output = fmt.Sprintf("health check command failed to start: %v", err)
		return res
	}
	s.closeChild()
	out := &limitedBuffer{max: maxHealthOutput}
	for _, f := range pr.outputs {
		pr.copiers.Add(1)
		go func(f *os.File) {
			defer pr.copiers.Done()
			io.Copy(out, f)
		}(f)
	}
	exited := make(chan int, 1)
	go func() {
		ps, _ := proc.Wait()
		exited <- exitStatus(ps)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case code := <-exited:
		pr.drain()
		res.ExitCode, res.Output = code, out.String()
	case <-t.C:
		proc.Signal(unix.SIGKILL)
		<-exited
		pr.drain()
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	}
	return res
}

// limitedBuffer keeps the first max bytes written and swallows the rest.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// mergeHealthcheck fills what the container's check leaves unset from the
// image's, as dockerd merges them (--health-interval alone keeps the
// image's command).
func mergeHealthcheck(cfg *ctr.Config, image *ctr.HealthConfig) {
	if image == nil {
		return
	}
	if cfg.Healthcheck == nil {
		h := *image
		cfg.Healthcheck = &h
		return
	}
	h := cfg.Healthcheck
	if len(h.Test) == 0 {
		h.Test = image.Test
	}
	if h.Interval == 0 {
		h.Interval = image.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = image.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = image.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = image.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = image.Retries
	}
}

// validateHealthcheck refuses what dockerd refuses at create.
func validateHealthcheck(h *ctr.HealthConfig) error {
	if h == nil {
		return nil
	}
	for name, d := range map[string]time.Duration{"Interval": h.Interval, "Timeout": h.Timeout,
		"StartPeriod": h.StartPeriod, "StartInterval": h.StartInterval} {
		if d != 0 && d < time.Millisecond {
			return errdefs.InvalidArgument("%s in Healthcheck cannot be less than 1ms", name)
		}
	}
	if h.Retries < 0 {
		return errdefs.InvalidArgument("Retries in Healthcheck cannot be negative")
	}
	return nil
}
