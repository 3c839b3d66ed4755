// Package qemu runs the Berth machine in QEMU: the kernel and initramfs
// from build/guest booted directly (-kernel/-initrd, q35 with qboot on
// x86), virtio disk, network, RNG and a virtio-serial port for the host
// channel (vsock where the host has vhost-vsock), driven over QMP.
// Importing it registers the driver as "qemu".
package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	driver.Register("qemu", func(log *slog.Logger) driver.Driver { return New(log) })
}

// Driver runs one QEMU machine.
type Driver struct {
	// Binary is the QEMU system emulator (default: qemu-system-ARCH on PATH).
	Binary string
	// Accel forces an accelerator ("kvm", "hvf", "whpx", "tcg"); empty
	// chooses (see chooseAccel).
	Accel string
	// GuestLogLevel is the guest agent's log level (berth.log=…).
	GuestLogLevel string
	// Arch is the guest's architecture ("amd64", "arm64"; default the
	// host's). Another one is emulated (TCG): tests boot the arm64 guest
	// that Apple silicon runs this way.
	Arch string
	// KernelArgs are more kernel parameters, to look into a boot
	// (initcall_debug, printk.time=1 …).
	KernelArgs []string

	log *slog.Logger

	life driver.Lifecycle // state, exit; see its lock order

	mu    sync.Mutex // guards the fields below
	m     *driver.Machine
	accel string
	pid   int
	proc  *os.Process
	done  chan struct{} // closed when QEMU has exited
	mon   *qmp.SocketMonitor
	mux   *transport.SerialMux
	cid   uint32
	arch  string // of the running guest
}

// New returns a stopped QEMU driver.
func New(log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	return &Driver{log: log}
}

// Info implements driver.Driver.
func (d *Driver) Info() driver.Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return driver.Info{Name: "qemu", Accel: d.accel, Vsock: d.cid != 0}
}

// Start implements driver.Driver: it boots m and returns once the engine
// in the guest answers /_ping over the host channel.
func (d *Driver) Start(ctx context.Context, m *driver.Machine) (err error) {
	run, err := d.life.BeginStart(m.Name)
	if err != nil {
		return err
	}
	defer d.life.EndStart(run, &err, d.Stop)

	if err := d.prepare(m); err != nil {
		return err
	}
	arch := d.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	bin := d.Binary
	if bin == "" {
		bin = binary(arch)
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("QEMU: %w", err)
	}
	want := d.Accel
	if arch != runtime.GOARCH {
		want = "tcg" // no hypervisor runs another architecture
	}
	accel, err := chooseAccel(ctx, d.log, want, bin, m)
	if err != nil {
		return err
	}
	var cid uint32
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
			cid = guestCID(m.StateDir)
		}
	}
	fsd, socks, err := startVirtiofsd(ctx, m)
	if err != nil {
		return err
	}
	stopFsd := func() {
		for _, p := range fsd {
			p.Kill()
			p.Wait()
		}
	}
	args, err := buildArgs(m, qemuConfig{arch: arch, accel: accel, stateDir: m.StateDir,
		vsockCID: cid, logLevel: d.GuestLogLevel, extra: d.KernelArgs, fsSockets: socks})
	if err != nil {
		stopFsd()
		return err
	}
	for _, s := range []string{qmpSock, agentSock} {
		os.Remove(filepath.Join(m.StateDir, s))
	}
	var lanePaths []string
	for i := 0; i < lanes; i++ {
		lanePaths = append(lanePaths, lanePath(m.StateDir, i))
		os.Remove(lanePaths[i])
	}
	logf, err := os.OpenFile(filepath.Join(m.StateDir, qemuLog), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		stopFsd()
		return fmt.Errorf("run %s: %w", bin, err)
	}
	bindToOwner(cmd.Process)
	m.Boot.Began(t0)
	done := make(chan struct{})
	mux := transport.NewSerialMux(filepath.Join(m.StateDir, agentSock), d.log)
	mux.LanePaths = lanePaths
	d.mu.Lock()
	d.m, d.accel, d.cid, d.pid, d.proc, d.done, d.mux, d.arch = m, accel, cid, cmd.Process.Pid, cmd.Process, done, mux, arch
	d.mu.Unlock()
	d.log.Info("qemu started", "machine", m.Name, "pid", cmd.Process.Pid, "accel", accel)

	go func() {
		werr := cmd.Wait()
		logf.Close()
		stopFsd() // they end with QEMU's connection; this reaps them
		why := fmt.Sprintf("qemu exited: %v; see %s and %s", errOrStatus(werr),
			filepath.Join(m.StateDir, driver.ConsoleLog), logf.Name())
		d.mu.Lock()
		if d.life.End(why) {
			d.log.Warn("machine died", "machine", m.Name, "err", werr)
		}
		d.pid, d.proc = 0, nil
		mon := d.mon
		d.mon = nil
		d.mu.Unlock()
		mux.Close()
		if mon != nil {
			mon.Disconnect()
		}
		close(done)
	}()

	// Everything below gives up as soon as QEMU exits.
	sctx, cancel := d.life.UntilEnd(ctx, done)
	defer cancel()
	if err := d.connectQMP(sctx, filepath.Join(m.StateDir, qmpSock)); err != nil {
		return err
	}
	d.log.Debug("QMP connected", "since_start", time.Since(t0))
	if err := driver.WaitEngineBoot(sctx, d, nil, 5*time.Second, 20*time.Millisecond, m.Boot); err != nil {
		return err
	}
	ready := time.Since(t0)
	// The guest clock starts from the RTC (whole seconds): set exactly,
	// off the start's path.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Control().SetTime(ctx, time.Now()); err != nil {
			d.log.Warn("set guest clock", "err", err)
		}
	}()
	d.life.SetRunning(run)
	d.log.Info("machine ready", "machine", m.Name, "accel", accel, "took", ready.Round(time.Millisecond))
	return nil
}

// prepare checks m and creates the state dir and the sparse data disk.
func (d *Driver) prepare(m *driver.Machine) error {
	if err := driver.CheckMachine(m); err != nil {
		return err
	}
	// The guest channel's and QMP's sockets are made here: the user's alone.
	if err := os.MkdirAll(m.StateDir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(m.StateDir, 0o700); err != nil {
		return err
	}
	// Unix socket paths are limited to 108 bytes.
	if p := filepath.Join(m.StateDir, agentSock); len(p) > 100 {
		return fmt.Errorf("state dir %s: path too long for its sockets (%d bytes)", m.StateDir, len(p))
	}
	return driver.EnsureDisk(filepath.Join(m.StateDir, driver.DataDisk), m.DiskGiB, d.log)
}

func (d *Driver) connectQMP(ctx context.Context, path string) error {
	var mon *qmp.SocketMonitor
	for {
		var err error
		mon, err = qmp.NewSocketMonitor("unix", path, 2*time.Second)
		if err == nil {
			if err = mon.Connect(); err == nil {
				break
			}
			mon.Disconnect()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("QMP %s: %w (%v)", path, context.Cause(ctx), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	events, err := mon.Events(context.Background())
	if err != nil {
		mon.Disconnect()
		return err
	}
	// Events must always be drained: the monitor's reader blocks on them,
	// and command replies queue behind.
	go func() {
		for ev := range events {
			d.onEvent(ev)
		}
	}()
	d.mu.Lock()
	d.mon = mon
	d.mu.Unlock()
	return nil
}

func (d *Driver) onEvent(ev qmp.Event) {
	switch ev.Event {
	case "VSERPORT_CHANGE":
		// The guest closed its end of the channel (agent restarted, guest
		// rebooting): the host's session over it is dead.
		if open, _ := ev.Data["open"].(bool); !open {
			d.mu.Lock()
			mux := d.mux
			d.mu.Unlock()
			if mux != nil {
				mux.Reset()
			}
		}
	case "SHUTDOWN", "POWERDOWN", "RESET", "GUEST_PANICKED":
		d.log.Info("qemu event", "event", ev.Event, "data", ev.Data)
	}
}

// qmpRun runs a QMP command, giving up when ctx ends.
func (d *Driver) qmpRun(ctx context.Context, cmd string) error {
	d.mu.Lock()
	mon := d.mon
	d.mu.Unlock()
	if mon == nil {
		return fmt.Errorf("QMP %s: not connected", cmd)
	}
	b, _ := json.Marshal(map[string]string{"execute": cmd})
	errc := make(chan error, 1)
	go func() {
		_, err := mon.Run(b)
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("QMP %s: %w", cmd, ctx.Err())
	}
}

// Stop implements driver.Driver. Graceful: the guest agent is asked to
// shut down (control API; else the ACPI power button, QMP
// system_powerdown, which PID 1 takes the same way): it stops the engine,
// trims and syncs the disk, and powers off. QEMU is made to quit if that
// does not happen before ctx ends (default 60 s). Forced: QMP quit, then
// SIGKILL.
func (d *Driver) Stop(ctx context.Context, force bool) error {
	d.mu.Lock()
	proc, done := d.proc, d.done
	if proc == nil {
		d.mu.Unlock()
		return nil
	}
	d.life.BeginStop()
	d.mu.Unlock()

	ctx, cancel := driver.StopContext(ctx)
	defer cancel()
	var err error
	if !force {
		if err = d.askShutdown(ctx); err == nil {
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				err = fmt.Errorf("guest did not power off in time: %w", ctx.Err())
			}
		}
		d.log.Warn("graceful stop failed; forcing", "err", err)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer qcancel()
	d.qmpRun(qctx, "quit")
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		proc.Kill()
		<-done
	}
	if err != nil {
		return fmt.Errorf("stop: %w (forced)", err)
	}
	return nil
}

// askShutdown asks the guest to power off: through its agent, which
// answers as soon as it runs, else (x86) with the ACPI power button (a
// guest still booting, an agent that does not answer).
func (d *Driver) askShutdown(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := d.Control().Shutdown(cctx)
	if err == nil {
		return nil
	}
	d.mu.Lock()
	acpi := d.arch == "amd64" // arm64's virt machine has no ACPI button without firmware
	d.mu.Unlock()
	if !acpi {
		return err
	}
	d.log.Debug("shutdown through the agent", "err", err)
	return d.qmpRun(ctx, "system_powerdown")
}

// Status implements driver.Driver.
func (d *Driver) Status(context.Context) (driver.Status, error) { return d.Status1(), nil }

// Status1 is Status without the context and error.
func (d *Driver) Status1() driver.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.life.Status()
	st.Accel, st.PID = d.accel, d.pid
	return st
}

// DialGuest implements driver.Driver.
func (d *Driver) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	mux, cid, running := d.mux, d.cid, d.proc != nil
	d.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("dial guest port %d: %w", port, driver.ErrNotRunning)
	}
	if cid != 0 {
		return dialVsock(ctx, mux, cid, port)
	}
	return mux.DialGuest(ctx, port)
}

// TakeLane implements transport.LaneDialer: a lane for a published port's
// download, when the channel is virtio-serial (vsock needs none).
func (d *Driver) TakeLane() *transport.HostLane {
	d.mu.Lock()
	mux, cid := d.mux, d.cid
	d.mu.Unlock()
	if mux == nil || cid != 0 {
		return nil
	}
	return mux.TakeLane()
}

// dialVsock connects to a guest port over vsock, which any local user can
// dial: the guest serves a connection only once it began with the channel
// key, which the virtio-serial session handed over (so one is made first).
func dialVsock(ctx context.Context, mux *transport.SerialMux, cid, port uint32) (net.Conn, error) {
	if err := mux.Ready(ctx); err != nil {
		return nil, fmt.Errorf("dial guest port %d: %w", port, err)
	}
	c, err := transport.Dial(ctx, fmt.Sprintf("vsock://%d:%d", cid, port))
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	if _, err := c.Write(mux.Key()); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial guest port %d over vsock: %w", port, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// Control is a client of the guest's control API.
func (d *Driver) Control() *control.Client {
	return &control.Client{Dial: func(ctx context.Context) (net.Conn, error) {
		return d.DialGuest(ctx, transport.PortControl)
	}}
}

// virtiofsdPaths are where Debian (QEMU's C daemon) and the Rust daemon
// install virtiofsd.
var virtiofsdPaths = []string{"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"}

// startVirtiofsd starts one virtiofsd per shared folder and waits for its
// socket. QEMU connects to each; they exit when QEMU does.
func startVirtiofsd(ctx context.Context, m *driver.Machine) ([]*os.Process, []string, error) {
	if len(m.Shares) == 0 {
		return nil, nil, nil
	}
	bin := ""
	for _, p := range virtiofsdPaths {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return nil, nil, fmt.Errorf("shared folders need virtiofsd (looked in %v)", virtiofsdPaths)
	}
	var procs []*os.Process
	var socks []string
	fail := func(err error) ([]*os.Process, []string, error) {
		for _, p := range procs {
			p.Kill()
			p.Wait()
		}
		return nil, nil, err
	}
	for i, sh := range m.Shares {
		sock := filepath.Join(m.StateDir, fmt.Sprintf("fs%d.sock", i))
		os.Remove(sock)
		logf, err := os.OpenFile(filepath.Join(m.StateDir, fmt.Sprintf("virtiofsd-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fail(err)
		}
		cmd := exec.Command(bin, "--socket-path="+sock, "-o", "source="+sh.HostPath, "-o", "cache=auto")
		cmd.Stdout, cmd.Stderr = logf, logf
		setProcAttr(cmd)
		err = cmd.Start()
		if err == nil {
			bindToOwner(cmd.Process)
		}
		logf.Close()
		if err != nil {
			return fail(fmt.Errorf("virtiofsd for %s: %w", sh.HostPath, err))
		}
		procs = append(procs, cmd.Process)
		socks = append(socks, sock)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fail(fmt.Errorf("virtiofsd for %s did not start; see %s", sh.HostPath, logf.Name()))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return procs, socks, nil
}

// guestCID derives a vsock context ID (≥ 3) from the state dir, so each
// machine on a host has its own.
func guestCID(stateDir string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(stateDir))
	return 3 + h.Sum32()%(1<<30)
}

func errOrStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return strings.TrimSpace(err.Error())
}
