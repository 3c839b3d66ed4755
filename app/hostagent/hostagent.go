// Package hostagent is `berth hostd`: the host process that owns the
// machine. It boots the VM with the configured driver, waits for the
// engine, forwards $BERTH_HOME/run/docker.sock and the containers'
// published ports into the guest, restarts a VM that dies, keeps the
// guest's clock right across host sleeps, maintains the `berth` docker
// context, and serves the status API (package hostapi) on
// $BERTH_HOME/run/hostd.sock. One runs per BERTH_HOME, guarded by a lock.
package hostagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// Options configure an Agent.
type Options struct {
	Paths   config.Paths
	Version string // hostd's version, reported in Status
	Log     *slog.Logger
	// Files are the guest's boot files and berth-agent (default:
	// FindGuestFiles()).
	Files *GuestFiles
	// NewDriver makes the machine's driver by name (default driver.New);
	// tests pass the fake.
	NewDriver func(name string, log *slog.Logger) (driver.Driver, error)
	// DefaultDriver is used when the settings name none (default: qemu
	// where it is registered, else native).
	DefaultDriver string
	// Boot starts the machine when Run begins.
	Boot bool
	// DockerConfig is the docker CLI's config directory holding the
	// contexts (default $DOCKER_CONFIG, else ~/.docker); "-" leaves the
	// docker context alone.
	DockerConfig string
	// Restart bounds restarts after crashes (zero: DefaultRestartPolicy).
	Restart RestartPolicy
	// ClockCheck is how often the host's wall clock is compared with its
	// monotonic clock to notice a sleep (default 5 s).
	ClockCheck time.Duration
}

// RestartPolicy says how a machine that died is brought back.
type RestartPolicy struct {
	// Backoff[i] is the wait before the restart after the i-th crash in a
	// row; the last entry repeats.
	Backoff []time.Duration
	// MaxCrashes within Window put the machine in the Error state instead
	// of restarting it again.
	MaxCrashes int
	Window     time.Duration
}

// DefaultRestartPolicy restarts at once, then after 2 and 5 s, and gives up
// after 4 crashes within 5 minutes.
var DefaultRestartPolicy = RestartPolicy{
	Backoff:    []time.Duration{0, 2 * time.Second, 5 * time.Second},
	MaxCrashes: 4,
	Window:     5 * time.Minute,
}

// bootTimeout bounds one boot, from QEMU's start to the engine answering;
// software emulation on a busy host is slow.
const bootTimeout = 5 * time.Minute

// Agent is a running host agent.
type Agent struct {
	o     Options
	log   *slog.Logger
	paths config.Paths
	files GuestFiles
	ctx   context.Context // hostd's lifetime
	quit  context.CancelCauseFunc

	mu       sync.Mutex // guards the fields below
	drv      driver.Driver
	drvName  string
	st       hostapi.Status
	booted   config.Settings // what the running machine was booted with
	booting  *boot           // the boot in flight, if any
	stopping chan struct{}   // closed when a stop in flight ends
	run      context.CancelFunc
	gen      uint64 // counts boots: watchers of an old boot stand down
	crashes  []time.Time
	subs     map[chan hostapi.Status]struct{}
	ports    *portForwarder
	health   healthCache
}

// boot is one boot in flight; done closes when it ends, with err set.
type boot struct {
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	restart bool // after a crash
	stopped bool // cancelled by Stop
}

// New returns an agent; Run makes it serve.
func New(o Options) (*Agent, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.NewDriver == nil {
		o.NewDriver = driver.New
	}
	if o.DefaultDriver == "" {
		o.DefaultDriver = defaultDriver()
	}
	if o.Restart.MaxCrashes == 0 {
		o.Restart = DefaultRestartPolicy
	}
	if o.ClockCheck == 0 {
		o.ClockCheck = 5 * time.Second
	}
	files := FindGuestFiles()
	if o.Files != nil {
		files = *o.Files
	}
	a := &Agent{o: o, log: o.Log, paths: o.Paths, files: files, subs: map[chan hostapi.Status]struct{}{}}
	s, _ := config.Load(o.Paths)
	a.st = hostapi.Status{State: hostapi.Stopped, HostdVersion: o.Version, DockerHost: o.Paths.DockerHost()}
	a.setResources(s)
	return a, nil
}

func defaultDriver() string {
	// vz and wsl register only on their platforms, where they are the
	// natural choice; QEMU is everywhere.
	for _, n := range []string{"vz", "wsl", "qemu", "native"} {
		for _, have := range driver.Names() {
			if n == have {
				return n
			}
		}
	}
	return "qemu"
}

// Run serves the docker socket and the status API until ctx ends or a
// client asks hostd to shut down; the machine is stopped before it returns.
func (a *Agent) Run(ctx context.Context) error {
	ctx, quit := context.WithCancelCause(ctx)
	defer quit(nil)
	a.ctx, a.quit = ctx, quit

	if err := os.MkdirAll(a.paths.RunDir(), 0o700); err != nil {
		return err
	}
	apiL, err := transport.Listen("unix://" + a.paths.HostdSocket())
	if err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	dockerL, err := transport.Listen("unix://" + a.paths.DockerSocket())
	if err != nil {
		apiL.Close()
		return fmt.Errorf("docker socket: %w", err)
	}
	if err := a.ensureDockerContext(); err != nil {
		a.log.Warn("docker context", "err", err)
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); srv.Serve(apiL) }()
	go func() { defer wg.Done(); a.serveDocker(dockerL) }()
	go func() { defer wg.Done(); a.watchClock(ctx) }()
	a.log.Info("hostd serving", "home", a.paths.Home, "docker", a.paths.DockerSocket(), "api", a.paths.HostdSocket(), "version", a.o.Version)

	if a.o.Boot {
		go func() {
			if _, err := a.Start(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("boot", "err", err)
			}
		}()
	}
	<-ctx.Done()
	a.log.Info("hostd shutting down", "why", context.Cause(ctx))
	dockerL.Close()
	// The machine stops cleanly: it cannot outlive hostd (QEMU ends with
	// its parent, and nothing would forward its socket).
	sctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.Stop(sctx, false); err != nil {
		a.log.Warn("stop machine", "err", err)
	}
	a.closeSubscribers()
	shctx, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	srv.Shutdown(shctx)
	srv.Close()
	wg.Wait()
	return nil
}

// Shutdown makes Run return (stopping the machine).
func (a *Agent) Shutdown() { a.quit(errors.New("shutdown requested")) }

// Status returns the machine's status.
func (a *Agent) Status() hostapi.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.statusLocked()
}

func (a *Agent) statusLocked() hostapi.Status {
	st := a.st
	if a.ports != nil {
		st.Ports = a.ports.list()
	}
	return st
}

// setResources copies the sizes of s into the status.
func (a *Agent) setResources(s config.Settings) {
	a.st.CPUs, a.st.MemoryMiB, a.st.DiskGiB = s.CPUs, s.MemoryMiB, s.DiskGiB
	a.st.Driver = s.Driver
	if a.st.Driver == "" {
		a.st.Driver = a.o.DefaultDriver
	}
}

// setState changes the state and tells the subscribers. Call with a.mu held.
func (a *Agent) setState(s hostapi.State, why string) {
	a.st.State, a.st.Error = s, why
	if s != hostapi.Running {
		a.st.StartedAt, a.st.MachinePID = time.Time{}, 0
	}
	a.publishLocked()
}

// publishLocked sends the current status to every subscriber. A
// subscriber's channel holds one status: a slow reader gets the latest.
func (a *Agent) publishLocked() {
	st := a.statusLocked()
	for ch := range a.subs {
		select {
		case <-ch:
		default:
		}
		ch <- st
	}
}

// publish is publishLocked for callers without the lock.
func (a *Agent) publish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.publishLocked()
}

// subscribe returns a channel of status changes, the current status first.
func (a *Agent) subscribe() (<-chan hostapi.Status, func()) {
	ch := make(chan hostapi.Status, 1)
	a.mu.Lock()
	ch <- a.statusLocked()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		if _, ok := a.subs[ch]; ok {
			delete(a.subs, ch)
			close(ch)
		}
		a.mu.Unlock()
	}
}

func (a *Agent) closeSubscribers() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		delete(a.subs, ch)
		close(ch)
	}
}
