package pid1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/vm/transport"
)

// Guest paths.
const (
	runDir        = "/run/berth"
	engineSocket  = runDir + "/docker.sock"
	controlSocket = runDir + "/control.sock"
	engineRoot    = dataDir + "/berth"
	// The system disk is mounted here; the initramfs links its paths into
	// the tree (build/guest), so the engine is also at /usr/lib/berth.
	systemDir    = "/system"
	engineBinary = "/usr/lib/berth/berth-agent"
)

// Init is PID 1's state, shared by the boot sequence, the control API and
// the shutdown path.
type Init struct {
	Version string // agent version, for /health
	log     *slog.Logger
	cfg     Config
	reaper  *reaper
	engine  *supervisor
	boot    bootLog

	mu        sync.Mutex
	bootErr   error
	formatted bool
	grown     bool
	diskOK    bool
	bootTime  time.Duration // kernel start → engine answering
	shares    []control.Share
	// sharesDone and netDone close once the shared folders are mounted
	// and the network is configured (or failed).
	sharesDone, netDone chan struct{}

	shutdownOnce sync.Once
}

// Main runs PID 1; it never returns.
func Main(version string) {
	p := &Init{Version: version}
	p.run()
}

func (p *Init) run() {
	// berth-init's own start (Go's runtime and package initialisation)
	// ends here.
	initAt := bootTime()
	t0 := time.Now()
	// The console is stdout/stderr; the host keeps it in its console log.
	if err := leaveRootfs(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-init: leave rootfs (containers will not start):", err)
	}
	if err := mountEarly(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-init:", err)
	}
	b, _ := os.ReadFile("/proc/cmdline")
	cfg, cerr := ParseCmdline(string(b))
	p.cfg = cfg
	if cfg.Probe {
		fmt.Println(ProbeMarker)
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	p.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("role", "init")
	slog.SetDefault(p.log)
	if cerr != nil {
		p.log.Error("boot", "err", cerr)
	}
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	p.sharesDone, p.netDone = make(chan struct{}), make(chan struct{})

	// The initramfs' modules (the host channel's, a virtio disk's) load
	// while the system disk mounts and the engine starts; the host
	// channel is served once they are in.
	modsDone := make(chan struct{})
	go func() {
		defer close(modsDone)
		defer p.boot.begin(control.PhaseModules)()
		if err := loadModules(moduleList("boot")); err != nil {
			p.log.Warn("boot modules", "err", err)
		}
		p.log.Debug("boot modules loaded", "since_init", time.Since(t0))
	}()

	// Every child is reaped by the reaper from now on; the exit status of
	// those PID 1 waits for (the engine, mke2fs …) is routed to it.
	p.reaper = newReaper()
	go p.reaper.loop()
	setRunner(p.reaper)

	// The system disk holds the engine and the other modules. (A virtio
	// one appears once the modules above are in; NVMe at once.)
	endSystem := p.boot.begin(control.PhaseSystem)
	err := mountSystem(cfg.System)
	endSystem()
	if err != nil {
		p.fail(err)
		mountBase()
		p.serveLocal(modsDone)
		p.halt(modsDone)
	}
	p.log.Debug("system disk mounted", "since_init", time.Since(t0))

	// The engine's process starts at once: under emulation its runtime and
	// package initialisation take a few hundred milliseconds, spent while
	// the rest of the machine comes up. It waits at a gate for the data
	// disk.
	args := []string{"--root", engineRoot, "--host", "unix://" + engineSocket, "--log-level", cfg.LogLevel}
	if cfg.Gateway.IsValid() {
		// host.docker.internal: the host as the user-mode network shows it.
		args = append(args, "--host-gateway-ip", cfg.Gateway.String())
	}
	p.engine = newSupervisor(p.reaper, p.log, engineBinary, append(args, cfg.EngineArgs...))
	gate, err := p.engine.startGated(&p.boot)
	if err != nil {
		p.log.Error("engine", "err", err)
	}

	if err := mountBase(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-init:", err)
	}
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) // Ctrl-Alt-Del becomes SIGINT: a clean shutdown
	p.watchSignals()
	// The kernel's modprobe from now on (build/guest leaves it out of the
	// initramfs, so what the kernel asked for before failed at once).
	if err := os.Symlink("/init", "/sbin/modprobe"); err != nil {
		p.log.Warn("modprobe", "err", err)
	}
	go func() {
		// The kernel's part ends when it runs /init; berth-init's own start
		// (Go's runtime and package initialisation) follows.
		k := readKernelLog()
		if k.runInit == 0 || k.runInit > initAt {
			k.runInit = initAt
		}
		p.boot.add(control.PhaseKernel, 0, k.runInit)
		if k.unpackStart > 0 && k.unpackEnd > k.unpackStart {
			p.boot.add(control.PhaseInitrd, k.unpackStart, k.unpackEnd)
		}
		p.boot.add(control.PhaseInit, k.runInit, initAt)
	}()
	p.serveLocal(modsDone)
	if err := writeEtc(cfg); err != nil {
		p.log.Warn("etc", "err", err)
	}
	// The engine opens nftables first thing (see modules.txt): loaded
	// while the disk mounts.
	nft := make(chan struct{})
	go func() {
		defer close(nft)
		if err := loadModules(moduleList("nft")); err != nil {
			p.log.Warn("nftables modules", "err", err)
		}
	}()

	endDisk := p.boot.begin(control.PhaseDisk)
	formatted, err := setupDisk(cfg.DataDisk)
	grown := false
	if err == nil && !formatted {
		var gerr error
		if grown, gerr = growFS(cfg.DataDisk); gerr != nil {
			p.log.Warn("data disk", "err", gerr)
		} else if grown {
			p.log.Info("data disk grown to fill its device", "device", cfg.DataDisk)
		}
	}
	endDisk()
	p.mu.Lock()
	p.formatted, p.grown, p.diskOK = formatted, grown, err == nil
	p.mu.Unlock()
	p.log.Debug("data disk mounted", "since_init", time.Since(t0))
	if err != nil {
		p.fail(err)
	} else if formatted {
		p.log.Info("data disk formatted", "device", cfg.DataDisk)
	}

	if p.bootError() != nil {
		// No engine without its disk: the control API reports why.
		p.engine.abort(gate)
		p.halt(modsDone)
	}
	<-nft
	p.engine.open(gate)
	// The network comes up and shared folders are mounted while the engine
	// starts; the host waits for them (Health.NetworkPending,
	// SharesPending) before it says the machine runs, so the first `docker
	// pull` and `docker run -v` work.
	go func() {
		defer close(p.netDone)
		defer p.boot.begin(control.PhaseNetwork)()
		if err := loadModules(moduleList("net")); err != nil {
			p.log.Warn("network modules", "err", err)
		}
		if err := setupNetwork(cfg); err != nil {
			p.log.Warn("network", "err", err)
		}
		p.log.Debug("network up", "since_init", time.Since(t0))
	}()
	go func() {
		defer close(p.sharesDone)
		if len(cfg.Shares) == 0 && cfg.Rosetta == "" {
			return
		}
		defer p.boot.begin(control.PhaseShares)()
		if err := loadModules(moduleList("shares")); err != nil {
			p.log.Warn("shares modules", "err", err)
		}
		p.mountShares()
		p.log.Debug("shared folders mounted", "since_init", time.Since(t0))
		// Rosetta (a share) runs the first amd64 container: registered
		// before the host says the machine runs.
		if cfg.Rosetta != "" {
			if err := setupRosetta(cfg.Rosetta); err != nil {
				p.log.Warn("rosetta", "err", err)
			} else {
				p.log.Info("rosetta registered for x86-64 binaries")
			}
		}
	}()
	go func() {
		if !p.engine.waitReady(2 * time.Minute) {
			return
		}
		bt, initTime := bootTime(), time.Since(t0)
		p.mu.Lock()
		p.bootTime = bt
		p.mu.Unlock()
		p.log.Info("engine ready", "since_kernel_start", bt.Round(time.Millisecond),
			"kernel", initAt.Round(time.Millisecond), "init", initTime.Round(time.Millisecond))
		p.background(cfg, t0)
	}()
	select {} // PID 1 never exits: the kernel would panic
}

// serveLocal serves the control API, and the host channel once the
// modules it needs are in.
func (p *Init) serveLocal(modsDone chan struct{}) {
	os.MkdirAll(runDir, 0o755)
	if err := p.serveControl(); err != nil {
		p.log.Error("control API", "err", err)
	}
	go func() {
		<-modsDone
		p.serveHost()
	}()
}

// halt keeps a machine that cannot run its engine up, its control API
// saying why (the host shows it); PID 1 never returns.
func (p *Init) halt(modsDone chan struct{}) {
	close(p.sharesDone)
	close(p.netDone)
	<-modsDone
	select {}
}

// mountSystem mounts the read-only system disk on /system, waiting for
// its device to appear (a virtio disk's module may still be loading).
func mountSystem(dev string) error {
	if err := waitFile(dev, 10*time.Second); err != nil {
		have, _ := filepath.Glob("/sys/class/block/*")
		for i, h := range have {
			have[i] = filepath.Base(h)
		}
		return fmt.Errorf("system disk: %w (block devices: %s)", err, strings.Join(have, " "))
	}
	if err := os.MkdirAll(systemDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(dev, systemDir, "ext4", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOATIME, ""); err != nil {
		return fmt.Errorf("system disk %s: mount: %w", dev, err)
	}
	return nil
}

// background brings up what the engine did not need to answer: the
// modules containers use, the power button, then the rest and the
// bundled images.
func (p *Init) background(cfg Config, t0 time.Time) {
	if err := loadModules(moduleList("engine")); err != nil {
		p.log.Warn("engine modules", "err", err)
	}
	p.log.Debug("engine modules loaded", "since_init", time.Since(t0))
	go p.watchPowerButton()
	if err := loadModules(moduleList("late")); err != nil {
		p.log.Warn("late modules", "err", err)
	}
	p.preloadImages()
}

// mountShares mounts the host's folders (virtiofs) at their guest paths.
func (p *Init) mountShares() {
	for _, sh := range p.cfg.Shares {
		st := control.Share{Tag: sh.Tag, Path: sh.Path}
		var flags uintptr = unix.MS_NODEV
		if sh.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		err := os.MkdirAll(sh.Path, 0o755)
		if err == nil {
			err = unix.Mount(sh.Tag, sh.Path, "virtiofs", flags, "")
		}
		if err != nil {
			st.Error = fmt.Sprintf("mount virtiofs %s on %s: %v", sh.Tag, sh.Path, err)
			p.log.Error("shared folder", "err", st.Error)
		} else {
			st.Mounted = true
		}
		p.mu.Lock()
		p.shares = append(p.shares, st)
		p.mu.Unlock()
	}
}

// fail records an error that keeps the engine from starting; the control
// API reports it and the host shows it.
func (p *Init) fail(err error) {
	p.log.Error("boot", "err", err)
	p.mu.Lock()
	p.bootErr = errors.Join(p.bootErr, err)
	p.mu.Unlock()
}

func (p *Init) bootError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bootErr
}

func (p *Init) watchSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGPWR)
	go func() {
		s := <-ch
		p.log.Info("signal", "signal", s)
		p.Shutdown()
	}()
}

// serveControl serves the control API on its socket; the host reaches it
// through the channel on transport.PortControl.
func (p *Init) serveControl() error {
	l, err := transport.Listen("unix://" + controlSocket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: control.Handler(p), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return nil
}

// serveHost serves the host's channel: vsock when the VM has a vsock
// device, else the virtio-serial port named cfg.Port.
func (p *Init) serveHost() {
	// The dial service in-process (published ports' bytes skip a relay),
	// with the lanes the machine has for their downloads.
	dial := &transport.NetService{Log: p.log, Lanes: openLanes(p.log)}
	g := &transport.GuestMux{Log: p.log, PrivateVsock: p.cfg.PrivateVsock, Routes: transport.Routes{
		transport.PortEngine:  "unix://" + engineSocket,
		transport.PortControl: "unix://" + controlSocket,
	}, Handlers: map[uint32]func(net.Conn){
		transport.PortNet: dial.ServeConn,
	}}
	ctx := context.Background()
	if hasVsockDevice() {
		if err := loadModules(moduleList("vsock")); err != nil {
			p.log.Warn("vsock modules", "err", err)
		}
	}
	if m, _ := filepath.Glob("/sys/bus/virtio/drivers/vmw_vsock_virtio_transport/virtio*"); len(m) > 0 {
		go func() {
			if err := g.ServeVsock(ctx); err != nil {
				p.log.Warn("vsock", "err", err)
			}
		}()
	}
	dev, err := findPort(p.cfg.Port, 5*time.Second)
	if err != nil {
		p.log.Warn("host channel", "err", err)
		return
	}
	p.log.Debug("host channel", "device", dev)
	g.ServeSerial(ctx, func() (io.ReadWriteCloser, error) { return os.OpenFile(dev, os.O_RDWR, 0) })
}

// openLanes opens the virtio-serial ports berth.lane0 … the machine has
// (transport's lanes); none under Apple Virtualization.
func openLanes(log *slog.Logger) *transport.GuestLanes {
	ports := map[int]*os.File{}
	for i := 0; ; i++ {
		dev, err := findPort(fmt.Sprintf("berth.lane%d", i), 0)
		if err != nil {
			break
		}
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			log.Warn("lane", "device", dev, "err", err)
			break
		}
		ports[i] = f
	}
	if len(ports) == 0 {
		return nil
	}
	return transport.NewGuestLanes(ports)
}

// hasVsockDevice tells whether the machine has a virtio vsock device
// (virtio device ID 19), once virtio_pci has probed.
func hasVsockDevice() bool {
	m, _ := filepath.Glob("/sys/bus/virtio/devices/*/device")
	for _, f := range m {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "0x0013" {
			return true
		}
	}
	return false
}

// findPort finds the virtio-serial port by name; there is no udev to make
// /dev/virtio-ports/NAME links.
func findPort(name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		m, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, f := range m {
			if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(filepath.Dir(f)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port named %q", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- control.Machine ----

// Health implements control.Machine.
func (p *Init) Health(ctx context.Context) control.Health {
	var uts unix.Utsname
	unix.Uname(&uts)
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	up := bootTime()
	p.mu.Lock()
	h := control.Health{
		AgentVersion:  p.Version,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]),
		BootedAt:      time.Now().Add(-up).UTC(),
		Uptime:        control.Duration(up),
		BootTime:      control.Duration(p.bootTime),
		Boot:          p.boot.report(),
		Time:          time.Now().UTC(),
		MemTotalMiB:   int(uint64(si.Totalram) * uint64(si.Unit) >> 20),
		MemAvailMiB:   int((uint64(si.Freeram) + uint64(si.Bufferram)) * uint64(si.Unit) >> 20),
		Disk:          control.Disk{Device: p.cfg.DataDisk, Mounted: p.diskOK, Formatted: p.formatted, Grown: p.grown},
	}
	if p.bootErr != nil {
		h.BootError = p.bootErr.Error()
	}
	h.Shares = append(h.Shares, p.shares...)
	p.mu.Unlock()
	h.SharesPending, h.NetworkPending = pending(p.sharesDone), pending(p.netDone)
	if h.Disk.Mounted {
		h.Disk.SizeBytes, h.Disk.UsedBytes, h.Disk.FreeBytes, _ = diskUsage()
	}
	if p.engine != nil {
		h.Engine = p.engine.state()
	}
	return h
}

// pending tells whether done is still open.
func pending(done chan struct{}) bool {
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// SetTime implements control.Machine.
func (p *Init) SetTime(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set clock: %w", err)
	}
	return nil
}

// Trim implements control.Machine.
func (p *Init) Trim(ctx context.Context) (uint64, error) {
	if !isMounted(dataDir) {
		return 0, fmt.Errorf("fstrim: no data disk mounted")
	}
	return trim()
}

// Shutdown implements control.Machine: it stops the engine (which stops
// its containers), ends every other process, trims and syncs the data disk,
// and powers off. It runs once; later calls return at once.
func (p *Init) Shutdown() {
	p.shutdownOnce.Do(func() { go p.shutdown() })
}

func (p *Init) shutdown() {
	p.log.Info("shutting down")
	if p.engine != nil {
		p.engine.stop(20 * time.Second)
	}
	// Everything else: TERM, a moment, then KILL. PID 1 is exempt.
	unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && p.reaper.children() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	unix.Kill(-1, unix.SIGKILL)
	if isMounted(dataDir) {
		if n, err := trim(); err != nil {
			p.log.Warn("fstrim", "err", err)
		} else {
			p.log.Info("fstrim", "bytes", n)
		}
		unix.Sync()
		if err := unix.Unmount(dataDir, 0); err != nil {
			p.log.Warn("unmount /data", "err", err)
			unix.Mount("", dataDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		}
	}
	unix.Sync()
	p.log.Info("power off")
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// bootTime is the time since the kernel started (CLOCK_BOOTTIME).
func bootTime() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano())
}

// pingEngine does GET /_ping on the engine socket.
func pingEngine(ctx context.Context) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", engineSocket)
	}, DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("engine /_ping: %s", resp.Status)
	}
	return nil
}
