// Package fake is a Driver with no machine behind it, for the host agent's
// unit tests only: guest ports are local addresses the test serves, and
// Crash plays a VM that dies. Driver behaviour itself is tested against
// real machines (vm/native, vm/qemu) with drivertest.
package fake

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// Driver is the fake. Routes maps guest ports to addresses (unix://…).
type Driver struct {
	Routes transport.Routes

	mu      sync.Mutex
	state   driver.State
	exit    string
	started time.Time
	starts  int
}

// New returns a stopped fake whose guest ports are routes.
func New(routes transport.Routes) *Driver {
	return &Driver{Routes: routes, state: driver.Stopped}
}

// Info implements driver.Driver.
func (d *Driver) Info() driver.Info { return driver.Info{Name: "fake"} }

// Start implements driver.Driver; it waits for the engine route to answer
// /_ping when there is one.
func (d *Driver) Start(ctx context.Context, m *driver.Machine) error {
	d.mu.Lock()
	if d.state != driver.Stopped {
		d.mu.Unlock()
		return fmt.Errorf("start %s: machine is %s", m.Name, d.state)
	}
	d.state, d.exit, d.started = driver.Running, "", time.Now()
	d.starts++
	d.mu.Unlock()
	if _, ok := d.Routes[transport.PortEngine]; ok {
		if err := driver.PingEngine(ctx, d); err != nil {
			d.Crash("engine did not answer")
			return fmt.Errorf("start %s: %w", m.Name, err)
		}
	}
	return nil
}

// Stop implements driver.Driver.
func (d *Driver) Stop(ctx context.Context, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state, d.started = driver.Stopped, time.Time{}
	return nil
}

// Crash makes the machine stop as if it died, with reason as Status.Exit.
func (d *Driver) Crash(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state, d.exit, d.started = driver.Stopped, reason, time.Time{}
}

// Starts counts successful and failed Start calls.
func (d *Driver) Starts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts
}

// Status implements driver.Driver.
func (d *Driver) Status(context.Context) (driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return driver.Status{State: d.state, Exit: d.exit, StartedAt: d.started}, nil
}

// DialGuest implements driver.Driver.
func (d *Driver) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	running := d.state == driver.Running
	d.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("dial guest port %d: %w", port, driver.ErrNotRunning)
	}
	addr, ok := d.Routes[port]
	if !ok {
		return nil, fmt.Errorf("dial guest port %d: no service on guest port %d", port, port)
	}
	return transport.Dial(ctx, addr)
}
