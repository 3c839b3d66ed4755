package hostagent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/fake"
	"github.com/berth-dev/berth/vm/transport"
)

// The host agent's tests run it for real against the fake driver, whose
// guest ports lead to real services on this host: the berth-agent engine
// (native), the control API's handler and the dial service. What only a VM
// can show (a killed QEMU, the guest's clock) is in test/vm.

// guestMachine is the guest side of the control API here: it records the
// clock it is given and opens shells on this host's /bin/sh.
type guestMachine struct {
	mu   sync.Mutex
	sets []time.Time
}

func (m *guestMachine) Health(context.Context) control.Health {
	return control.Health{AgentVersion: "test-agent", KernelVersion: "6.1-test", Time: time.Now(),
		Disk: control.Disk{Mounted: true, UsedBytes: 12345}}
}
func (m *guestMachine) Shutdown() {}
func (m *guestMachine) SetTime(t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets = append(m.sets, t)
	return nil
}
func (m *guestMachine) Trim(context.Context) (uint64, error) { return 0, nil }
func (m *guestMachine) timesSet() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sets)
}

func (m *guestMachine) StartShell(argv, env []string, tty *os.File, terminal bool) (<-chan int, error) {
	return testkit.StartShell(argv, env, tty, terminal)
}

// serveUnix serves h on a new unix socket and returns its address.
func serveUnix(t *testing.T, name string, serve func(net.Listener)) string {
	addr := "unix://" + filepath.Join(t.TempDir(), name)
	l, err := transport.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serve(l)
	return addr
}

// slowDriver is the fake with a boot that waits for release (or its
// context), to test what happens during a boot.
type slowDriver struct {
	*fake.Driver
	release chan struct{}
}

func (d *slowDriver) Start(ctx context.Context, m *driver.Machine) error {
	select {
	case <-d.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return d.Driver.Start(ctx, m)
}

type env struct {
	t      *testing.T
	a      *Agent
	fake   *fake.Driver
	guest  *guestMachine
	engine *testkit.Agent
	paths  config.Paths
	api    *hostapi.Client
	docker *testkit.Docker
	done   chan error
	cancel context.CancelFunc
}

type envOptions struct {
	wrap    func(*fake.Driver) driver.Driver
	restart RestartPolicy
	boot    bool
}

func newEnv(t *testing.T, o envOptions) *env {
	testkit.RequireRoot(t)
	engine := testkit.StartAgent(t, testkit.AgentOptions{})
	guest := &guestMachine{}
	routes := transport.Routes{
		transport.PortEngine: engine.Host,
		transport.PortControl: serveUnix(t, "control.sock", func(l net.Listener) {
			(&http.Server{Handler: control.Handler(guest)}).Serve(l)
		}),
		transport.PortNet: serveUnix(t, "net.sock", func(l net.Listener) { transport.ServeNet(l, nil) }),
	}
	fk := fake.New(routes)
	var drv driver.Driver = fk
	if o.wrap != nil {
		drv = o.wrap(fk)
	}
	paths := config.Paths{Home: filepath.Join(t.TempDir(), "home")}
	if o.restart.MaxCrashes == 0 {
		o.restart = RestartPolicy{Backoff: []time.Duration{0, 100 * time.Millisecond}, MaxCrashes: 3, Window: time.Minute}
	}
	a, err := New(Options{Paths: paths, Version: "test", Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Files: &GuestFiles{}, NewDriver: func(string, *slog.Logger) (driver.Driver, error) { return drv, nil },
		DefaultDriver: "fake", DockerConfig: filepath.Join(t.TempDir(), "docker"), Restart: o.restart, Boot: o.boot,
		ClockCheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, a: a, fake: fk, guest: guest, engine: engine, paths: paths, api: hostapi.NewClient(paths.HostdSocket()),
		done: make(chan error, 1), cancel: cancel}
	go func() { e.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.done:
		case <-time.After(30 * time.Second):
			t.Error("hostd did not stop")
		}
	})
	e.waitAPI()
	e.docker = testkit.NewDocker(t, paths.DockerHost())
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) waitAPI() {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.api.Status(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("hostd API did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) waitState(want hostapi.State, limit time.Duration) hostapi.Status {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := e.api.Status(context.Background())
		if err == nil && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("state %q, want %q (%v)", st.State, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
