// Package drivertest is the conformance suite every VM driver runs: the
// lifecycle that the host agent relies on, checked against a real machine.
package drivertest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// Options configure Run.
type Options struct {
	// New makes a fresh driver and the machine to start with it.
	New func(t *testing.T) (driver.Driver, *driver.Machine)
	// Kill ends the machine from outside, as a crash would. Default: SIGKILL
	// to Status.PID.
	Kill func(t *testing.T, d driver.Driver)
	// StartTimeout bounds each start (default 2 minutes: VMs boot under
	// software emulation in CI).
	StartTimeout time.Duration
}

// Run checks: start → the engine answers /_ping through DialGuest →
// graceful stop → stopped; start again after a stop; forced stop; a machine
// killed from outside is reported stopped with a reason; DialGuest on a
// stopped machine fails clearly.
func Run(t *testing.T, o Options) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.Kill == nil {
		o.Kill = killPID
	}
	d, m := o.New(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.Stop(ctx, true)
	})

	start := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
		defer cancel()
		t0 := time.Now()
		if err := d.Start(ctx, m); err != nil {
			t.Fatalf("start: %v", err)
		}
		t.Logf("%s: started in %v (accel %q)", d.Info().Name, time.Since(t0).Round(time.Millisecond), d.Info().Accel)
		wantState(t, d, driver.Running)
		ping(t, d)
	}
	stop := func(t *testing.T, force bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		t0 := time.Now()
		if err := d.Stop(ctx, force); err != nil {
			t.Fatalf("stop (force=%v): %v", force, err)
		}
		t.Logf("stopped (force=%v) in %v", force, time.Since(t0).Round(time.Millisecond))
		st := wantState(t, d, driver.Stopped)
		if st.Exit != "" {
			t.Errorf("requested stop reported as an exit: %q", st.Exit)
		}
	}

	t.Run("StartPingStop", func(t *testing.T) {
		start(t)
		ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
		defer cancel()
		if err := d.Start(ctx, m); err == nil {
			t.Error("a second Start of a running machine succeeded")
		}
		stop(t, false)
	})
	t.Run("DialStopped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, err := d.DialGuest(ctx, transport.PortEngine); err == nil {
			c.Close()
			t.Fatal("DialGuest on a stopped machine succeeded")
		} else if !errors.Is(err, driver.ErrNotRunning) {
			t.Fatalf("DialGuest on a stopped machine: %v, want ErrNotRunning", err)
		}
	})
	t.Run("RestartForceStop", func(t *testing.T) {
		start(t)
		stop(t, true)
	})
	t.Run("Killed", func(t *testing.T) {
		start(t)
		o.Kill(t, d)
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := d.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.State == driver.Stopped {
				if st.Exit == "" {
					t.Error("a killed machine reported no reason")
				}
				t.Logf("killed machine: %s", st.Exit)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("killed machine still %s", st.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
		start(t) // and it starts again
		stop(t, false)
	})
}

func wantState(t *testing.T, d driver.Driver, want driver.State) driver.Status {
	t.Helper()
	st, err := d.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.State != want {
		t.Fatalf("state %q, want %q", st.State, want)
	}
	return st
}

// ping does GET /_ping on the engine port, as the docker CLI would.
func ping(t *testing.T, d driver.Driver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := driver.PingEngine(ctx, d); err != nil {
		t.Fatal(err)
	}
}

func killPID(t *testing.T, d driver.Driver) {
	st, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID <= 0 {
		t.Fatalf("no PID to kill (status %+v)", st)
	}
	p, err := os.FindProcess(st.PID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("kill %d: %v", st.PID, err)
	}
}
