package driver

import (
	"sync"
	"time"

	"github.com/berth-dev/berth/guest-agent/control"
)

// Phases of a start the host adds to those the guest reports
// (control.Phase*).
const (
	PhaseVM      = "vm"      // the VM process starts (firmware, kernel loaded) → the guest's kernel starts
	PhaseConnect = "connect" // the engine answers in the guest → it answers through the host channel
	PhaseReady   = "ready"   // the host agent's last steps: the guest's network and shared folders, clock, version
)

// BootPhase is a phase of a start on the host's clock, since the VM
// process started.
type BootPhase struct {
	Name    string
	Start   time.Duration
	End     time.Duration // when Running, now
	Running bool
}

// BootClock puts a start's phases on one clock: the host's, from the VM
// process's start. The guest reports its phases on its own clock (since its
// kernel started, control.Boot); the first answer to /health, its uptime
// against the host's clock, places the kernel's start on the host's. A
// driver that has one in Machine.Boot calls Began, Guest and Connected;
// the host agent adds what follows. A nil BootClock does nothing.
type BootClock struct {
	// OnChange, if set, is called after each change (not under the lock).
	OnChange func()

	mu        sync.Mutex
	began     time.Time
	kernel    time.Time // zero until the guest answered
	guest     control.Boot
	connected time.Time
	ready     time.Time
}

// Began marks the VM process's start.
func (c *BootClock) Began(t time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.began, c.kernel, c.guest, c.connected, c.ready = t, time.Time{}, control.Boot{}, time.Time{}, time.Time{}
	c.mu.Unlock()
	c.changed()
}

// Guest records what the guest reported in h, asked at sent and answered
// at recv (host clock).
func (c *BootClock) Guest(h control.Health, sent, recv time.Time) {
	if c == nil || h.Uptime <= 0 {
		return
	}
	c.mu.Lock()
	if c.kernel.IsZero() {
		// The guest read its clock about halfway through the round trip.
		mid := sent.Add(recv.Sub(sent) / 2)
		c.kernel = mid.Add(-time.Duration(h.Uptime))
		if c.kernel.Before(c.began) {
			c.kernel = c.began
		}
	}
	c.guest = h.Boot
	c.mu.Unlock()
	c.changed()
}

// Connected marks the engine's first answer through the host channel.
func (c *BootClock) Connected(t time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.connected = t
	c.mu.Unlock()
	c.changed()
}

// Ready marks the end of the start.
func (c *BootClock) Ready(t time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.ready = t
	c.mu.Unlock()
	c.changed()
}

func (c *BootClock) changed() {
	if c.OnChange != nil {
		c.OnChange()
	}
}

// Phases lists the phases known so far, those that ended in the order they
// began, then those still running.
func (c *BootClock) Phases(now time.Time) []BootPhase {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.began.IsZero() {
		return nil
	}
	since := func(t time.Time) time.Duration { return t.Sub(c.began) }
	var done, running []BootPhase
	if c.kernel.IsZero() {
		// The guest has not answered yet: all the host knows is that the
		// machine boots.
		return []BootPhase{{Name: PhaseVM, End: since(now), Running: true}}
	}
	k := since(c.kernel)
	done = append(done, BootPhase{Name: PhaseVM, End: k})
	engineUp := time.Duration(0)
	for _, p := range c.guest.Phases {
		bp := BootPhase{Name: p.Name, Start: k + time.Duration(p.Start), End: k + time.Duration(p.End)}
		done = append(done, bp)
		if p.Name == control.PhaseEngineOpen {
			engineUp = bp.End
		}
	}
	for _, p := range c.guest.Running {
		running = append(running, BootPhase{Name: p.Name, Start: k + time.Duration(p.Start), End: since(now), Running: true})
	}
	if !c.connected.IsZero() && engineUp > 0 {
		// The guest notices its engine answering by polling: the host can
		// be first.
		done = append(done, BootPhase{Name: PhaseConnect, Start: engineUp, End: max(engineUp, since(c.connected))})
	}
	if !c.connected.IsZero() {
		p := BootPhase{Name: PhaseReady, Start: since(c.connected)}
		if c.ready.IsZero() {
			p.End, p.Running = since(now), true
			running = append(running, p)
		} else {
			p.End = since(c.ready)
			done = append(done, p)
		}
	}
	sortPhases(done)
	return append(done, running...)
}

// sortPhases orders phases by their start (stable: ties keep their order).
func sortPhases(ps []BootPhase) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Start < ps[j-1].Start; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}
