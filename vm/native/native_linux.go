package native

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	driver.Register("native", func(log *slog.Logger) driver.Driver { return New(log) })
}

// Driver runs the agent as a child process of the host.
type Driver struct {
	log *slog.Logger

	life driver.Lifecycle // state, exit; see its lock order

	mu   sync.Mutex // guards the fields below
	m    *driver.Machine
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// New returns a stopped native driver.
func New(log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	return &Driver{log: log}
}

// Info implements driver.Driver.
func (d *Driver) Info() driver.Info {
	return driver.Info{Name: "native", FileSharing: "native", HostPorts: true}
}

// Socket is the Engine API socket of machine m.
func Socket(m *driver.Machine) string { return filepath.Join(m.StateDir, "run", "docker.sock") }

// Start implements driver.Driver: it runs `berth-agent --root STATE/root
// --host unix://STATE/run/docker.sock` and waits for /_ping.
func (d *Driver) Start(ctx context.Context, m *driver.Machine) (err error) {
	run, err := d.life.BeginStart(m.Name)
	if err != nil {
		return err
	}
	defer d.life.EndStart(run, &err, d.Stop)

	if m.Agent == "" {
		return errors.New("no berth-agent binary given")
	}
	if err := os.MkdirAll(m.StateDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(m.StateDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := append([]string{
		"--root", filepath.Join(m.StateDir, "root"),
		"--host", "unix://" + Socket(m),
		"--cgroup-parent", "/berth-" + m.Name,
	}, m.EngineArgs...)
	cmd := exec.Command(m.Agent, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.m, d.cmd, d.done = m, cmd, done
	d.mu.Unlock()

	go func() {
		err := cmd.Wait()
		logf.Close()
		why := fmt.Sprintf("berth-agent exited: %v (log: %s)", errOrStatus(err), logf.Name())
		d.mu.Lock()
		if d.life.End(why) {
			d.log.Warn("native engine died", "machine", m.Name, "err", err)
		}
		d.cmd = nil
		d.mu.Unlock()
		close(done)
	}()

	if err := driver.WaitEngine(ctx, d, done, 2*time.Second, 20*time.Millisecond); errors.Is(err, driver.ErrEnded) {
		return errors.New(d.life.Status().Exit)
	} else if err != nil {
		return err
	}
	d.life.SetRunning(run)
	return nil
}

func errOrStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Stop implements driver.Driver: SIGTERM (the engine stops its containers
// and saves state), SIGKILL if ctx ends first or with force.
func (d *Driver) Stop(ctx context.Context, force bool) error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	if cmd == nil {
		d.mu.Unlock()
		return nil
	}
	d.life.BeginStop()
	d.mu.Unlock()

	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("stop: engine did not exit in time, killed: %w", context.Cause(ctx))
	}
}

// Status implements driver.Driver.
func (d *Driver) Status(context.Context) (driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.life.Status()
	if d.cmd != nil {
		st.PID = d.cmd.Process.Pid
	}
	return st, nil
}

// DialGuest implements driver.Driver. Only the engine port exists natively.
func (d *Driver) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	m, running := d.m, d.cmd != nil
	d.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("dial guest port %d: %w", port, driver.ErrNotRunning)
	}
	if port != transport.PortEngine {
		return nil, fmt.Errorf("dial guest port %d: the native driver serves only the engine (port %d)", port, transport.PortEngine)
	}
	return transport.Dial(ctx, "unix://"+Socket(m))
}
