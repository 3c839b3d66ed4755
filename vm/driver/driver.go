// Package driver defines how Berth runs its Linux machine, whatever runs it:
// QEMU, Apple Virtualization, WSL2, or (Linux only) the agent as a plain
// host process. A Driver runs one machine; extra abilities (save/restore,
// balloon, console) are separate interfaces found by type assertion.
package driver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/vm/transport"
)

// Driver runs one machine.
type Driver interface {
	// Info describes the driver and, once started, the accelerator in use.
	Info() Info
	// Start boots m and returns once the guest agent answers.
	Start(ctx context.Context, m *Machine) error
	// Stop shuts the machine down: gracefully (the guest stops its engine,
	// trims and syncs its disk, powers off) or, with force, at once.
	Stop(ctx context.Context, force bool) error
	// Status reports the machine's state; a machine that died is Stopped,
	// with the reason in Status.Exit.
	Status(ctx context.Context) (Status, error)
	// DialGuest connects to a guest port (transport.PortEngine …).
	DialGuest(ctx context.Context, port uint32) (net.Conn, error)
}

// Machine is what to run. Drivers read what applies to them.
type Machine struct {
	Name      string // unique per host; names host-global resources
	CPUs      int
	MemoryMiB int
	DiskGiB   int    // persistent data disk, created sparse on first start
	Kernel    string // VM drivers: kernel image
	Initrd    string // VM drivers: initramfs with berth-init as /init
	// System is the read-only system disk (VM drivers; make guest's
	// system.img): Berth's binaries and what the initramfs leaves out.
	// Empty: system.img next to Initrd.
	System   string
	StateDir string // disk image, sockets, console log, pid files
	Shares   []Share
	// EngineArgs are extra berth-agent flags (e.g. --insecure-registry=…).
	EngineArgs []string
	// Agent is the berth-agent binary, for drivers that run it directly.
	Agent string
	// Rootfs is the guest's root filesystem as a tar (WSL imports it as a
	// distro; make guest writes wsl-rootfs.tar.gz).
	Rootfs string
	// Boot, if set, hears the start's phases (VM drivers): the host shows
	// them while the machine starts, the benchmarks split the boot with them.
	Boot *BootClock
}

// Share is a host folder visible in the guest.
type Share struct {
	Tag       string
	HostPath  string
	GuestPath string
	ReadOnly  bool
}

// ConsoleLog is the file, under the state dir, where VM drivers write the
// guest's console (kernel messages and the agent's log).
const ConsoleLog = "console.log"

// State is the machine's lifecycle state.
type State string

const (
	Stopped  State = "stopped"
	Starting State = "starting"
	Running  State = "running"
	Stopping State = "stopping"
)

// Status is a snapshot of the machine.
type Status struct {
	State     State
	Accel     string    // "kvm", "hvf", "whpx", "tcg"; "" when no VM
	PID       int       // the host process running the machine (qemu, agent), 0 if none
	StartedAt time.Time // zero unless running
	// Exit says why the machine stopped when nobody asked it to (the VM
	// process died, the guest panicked); empty after a requested stop.
	Exit string
}

// Info describes a driver.
type Info struct {
	Name        string
	Accel       string // accelerator chosen at the last start
	Vsock       bool   // guest ports carried by vsock (else virtio-serial, or local sockets)
	FileSharing string // "virtiofs", "9p", "native", "" (none)
	// HostPorts: containers' published ports already listen on the host
	// (the engine runs there), so the host agent forwards none.
	HostPorts bool
}

// ErrNotRunning is returned by DialGuest when no machine runs. (Stop of a
// stopped machine does nothing.)
var ErrNotRunning = errors.New("machine is not running")

// Factory makes a driver.
type Factory func(log *slog.Logger) Driver

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a driver available by name; drivers call it from init,
// in files built only where they can run.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("driver: " + name + " registered twice")
	}
	registry[name] = f
}

// New makes the named driver.
func New(name string, log *slog.Logger) (Driver, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no VM driver %q on this platform (have %v)", name, Names())
	}
	if log == nil {
		log = slog.Default()
	}
	return f(log), nil
}

// Names lists the registered drivers.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrEnded is WaitEngine's answer when the machine ended before its engine
// answered; the driver knows why.
var ErrEnded = errors.New("machine ended")

// WaitEngine pings a starting machine's engine until it answers, each ping
// bounded by try and the next one every apart. It returns ErrEnded once
// ended is closed (a nil channel: never), and ctx's cause with the last
// ping's error once ctx ends.
func WaitEngine(ctx context.Context, d interface {
	DialGuest(ctx context.Context, port uint32) (net.Conn, error)
}, ended <-chan struct{}, try, every time.Duration) error {
	return WaitEngineBoot(ctx, d, ended, try, every, nil)
}

// WaitEngineBoot is WaitEngine for a VM whose PID 1 serves the control
// API: while the engine does not answer, it asks the guest how its boot
// goes (at most every 100 ms) and tells clock, which also hears the
// engine's first answer.
func WaitEngineBoot(ctx context.Context, d interface {
	DialGuest(ctx context.Context, port uint32) (net.Conn, error)
}, ended <-chan struct{}, try, every time.Duration, clock *BootClock) error {
	cc := &control.Client{Dial: func(ctx context.Context) (net.Conn, error) { return d.DialGuest(ctx, transport.PortControl) }}
	var asked time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, try)
		err := PingEngine(pctx, d)
		cancel()
		if err == nil {
			clock.Connected(time.Now())
			return nil
		}
		if clock != nil && time.Since(asked) >= 100*time.Millisecond {
			asked = time.Now()
			hctx, cancel := context.WithTimeout(ctx, try)
			h, herr := cc.Health(hctx)
			cancel()
			if herr == nil {
				clock.Guest(h, asked, time.Now())
			}
		}
		select {
		case <-ended:
			return ErrEnded
		case <-ctx.Done():
			return fmt.Errorf("engine did not answer: %w (last: %v)", context.Cause(ctx), err)
		case <-time.After(every):
		}
	}
}

// PingEngine does GET /_ping on the guest's engine port, as the docker CLI
// does first; drivers use it to tell that a machine is up.
func PingEngine(ctx context.Context, d interface {
	DialGuest(ctx context.Context, port uint32) (net.Conn, error)
}) error {
	c, err := d.DialGuest(ctx, transport.PortEngine)
	if err != nil {
		return fmt.Errorf("dial engine: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"); err != nil {
		return fmt.Errorf("ping engine: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("ping engine: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return fmt.Errorf("ping engine: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		return fmt.Errorf("ping engine: %s %q", resp.Status, body)
	}
	return nil
}
