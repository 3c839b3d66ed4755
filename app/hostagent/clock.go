package hostagent

import (
	"context"
	"time"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// clockReading is the wall clock and a monotonic clock read together. The
// monotonic clock does not advance while the host sleeps (Go reads
// CLOCK_MONOTONIC on Linux, mach_absolute_time on macOS); the wall clock
// does, and so does an NTP step.
type clockReading struct {
	wall time.Time     // without its monotonic reading
	mono time.Duration // since an arbitrary origin
}

var clockOrigin = time.Now()

func readClock() clockReading {
	now := time.Now()
	return clockReading{wall: now.Round(0), mono: now.Sub(clockOrigin)}
}

// clockJump is how far the wall clock moved beyond the monotonic clock
// between two readings; more than jumpThreshold means the host slept (or
// its clock was set), and the guest's clock, which did not see it, is off.
func clockJump(prev, now clockReading) time.Duration {
	d := now.wall.Sub(prev.wall) - (now.mono - prev.mono)
	if d < 0 {
		d = -d
	}
	return d
}

const (
	jumpThreshold = 2 * time.Second
	// driftCheck is how often the guest's clock is compared with the
	// host's while nothing jumped (emulated guests drift); driftMax is the
	// error tolerated.
	driftCheck = time.Minute
	driftMax   = time.Second
)

// watchClock sets the guest's clock when the host's wall clock jumps
// (after a sleep) and when the guest drifts, until ctx ends.
func (a *Agent) watchClock(ctx context.Context) {
	t := time.NewTicker(a.o.ClockCheck)
	defer t.Stop()
	prev := readClock()
	lastDrift := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := readClock()
		if j := clockJump(prev, now); j > jumpThreshold {
			a.log.Info("host clock jumped (sleep or clock change): setting the guest's clock", "by", j.Round(time.Second))
			a.syncClock(ctx)
		} else if time.Since(lastDrift) > driftCheck {
			lastDrift = time.Now()
			a.checkDrift(ctx)
		}
		prev = now
	}
}

// syncClock sets the guest clock to the host's (VM drivers only).
func (a *Agent) syncClock(ctx context.Context) {
	a.mu.Lock()
	drv, running := a.drv, a.st.State == hostapi.Running
	a.mu.Unlock()
	if !running || drv.Info().HostPorts { // the native engine uses the host's clock
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := controlClient(drv).SetTime(ctx, time.Now()); err != nil {
		a.log.Warn("set the guest clock", "err", err)
	}
}

// checkDrift sets the guest clock if it is off by more than driftMax.
func (a *Agent) checkDrift(ctx context.Context) {
	a.mu.Lock()
	drv, running := a.drv, a.st.State == hostapi.Running
	a.mu.Unlock()
	if !running || drv.Info().HostPorts {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	t0 := time.Now()
	h, err := a.guestHealth(hctx, drv)
	if err != nil {
		return
	}
	// The guest read its clock somewhere in the round trip.
	mid := t0.Add(time.Since(t0) / 2)
	if d := h.Time.Sub(mid); d > driftMax || d < -driftMax {
		a.log.Info("guest clock drifted: setting it", "off_by", d.Round(time.Millisecond))
		a.syncClock(ctx)
	}
}
