package vz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	vz "github.com/Code-Hex/vz/v3"

	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	driver.Register("vz", func(log *slog.Logger) driver.Driver { return New(log) })
}

// Files in the machine's state dir.
const (
	machineIDFile = "vz-machine-id" // the platform identity: a restore needs the same one
	macFile       = "vz-mac"        // a stable MAC, so the NAT's DHCP lease stays the same
	saveFile      = "vz-suspend.state"
)

// Driver runs one machine in this process.
type Driver struct {
	// GuestLogLevel is the guest agent's log level (berth.log=…).
	GuestLogLevel string
	// NoRosetta keeps Rosetta out of the guest even where it is installed.
	NoRosetta bool

	log *slog.Logger

	life driver.Lifecycle // state, exit; see its lock order

	mu   sync.Mutex // guards the fields below
	m    *driver.Machine
	vm   *vz.VirtualMachine
	sock *vz.VirtioSocketDevice
	done chan struct{} // closed when the VM has stopped
}

// New returns a stopped vz driver.
func New(log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	return &Driver{log: log}
}

// Info implements driver.Driver.
func (d *Driver) Info() driver.Info {
	return driver.Info{Name: "vz", Accel: "vz", Vsock: true, FileSharing: "virtiofs"}
}

// Start implements driver.Driver: it boots m (or resumes the state a
// Suspend saved) and returns once the engine answers /_ping over vsock.
func (d *Driver) Start(ctx context.Context, m *driver.Machine) (err error) {
	run, err := d.life.BeginStart(m.Name)
	if err != nil {
		return err
	}
	defer d.life.EndStart(run, &err, d.Stop)

	if err := driver.CheckMachine(m); err != nil {
		return err
	}
	if err := os.MkdirAll(m.StateDir, 0o700); err != nil {
		return err
	}
	if err := driver.EnsureDisk(filepath.Join(m.StateDir, driver.DataDisk), m.DiskGiB, d.log); err != nil {
		return err
	}
	cfg, err := d.configure(m)
	if err != nil {
		return err
	}
	t0 := time.Now()
	m.Boot.Began(t0)
	vm, resumed, err := d.boot(cfg, m)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.m, d.vm, d.done = m, vm, done
	d.mu.Unlock()
	go d.watch(vm, done)

	socks := vm.SocketDevices()
	if len(socks) == 0 {
		return errors.New("the VM has no vsock device")
	}
	d.mu.Lock()
	d.sock = socks[0]
	d.mu.Unlock()

	sctx, cancel := d.life.UntilEnd(ctx, done)
	defer cancel()
	if err := driver.WaitEngineBoot(sctx, d, nil, 5*time.Second, 20*time.Millisecond, m.Boot); err != nil {
		return fmt.Errorf("%w; see %s", err, filepath.Join(m.StateDir, driver.ConsoleLog))
	}
	// A booted guest's clock starts from the RTC in whole seconds; a
	// resumed one is as old as the saved state. Set it exactly either way.
	if err := d.Control().SetTime(sctx, time.Now()); err != nil {
		d.log.Warn("set guest clock", "err", err)
	}
	d.life.SetRunning(run)
	d.log.Info("machine ready", "machine", m.Name, "resumed", resumed, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// boot restores the state a Suspend saved, if there is one, else starts
// a VM from its kernel. The saved state is removed either way: once the
// guest has run on, its disk no longer matches that memory.
func (d *Driver) boot(cfg *vz.VirtualMachineConfiguration, m *driver.Machine) (vm *vz.VirtualMachine, resumed bool, err error) {
	saved := filepath.Join(m.StateDir, saveFile)
	if _, serr := os.Stat(saved); serr == nil {
		vm, err := vz.NewVirtualMachine(cfg)
		if err != nil {
			return nil, false, fmt.Errorf("create the VM: %w", err)
		}
		rerr := restore(vm, cfg, saved)
		os.Remove(saved)
		if rerr == nil {
			return vm, true, nil
		}
		d.log.Warn("could not resume the saved state; booting", "err", rerr)
		if vm.CanStop() {
			vm.Stop()
		}
	}
	vm, err = vz.NewVirtualMachine(cfg)
	if err != nil {
		return nil, false, fmt.Errorf("create the VM: %w", err)
	}
	if err := vm.Start(); err != nil {
		return nil, false, fmt.Errorf("start the VM: %w", err)
	}
	return vm, false, nil
}

// configure builds the VM's configuration for m.
func (d *Driver) configure(m *driver.Machine) (*vz.VirtualMachineConfiguration, error) {
	kernel, err := bootKernel(m.Kernel)
	if err != nil {
		return nil, err
	}
	params, err := driver.GuestParams(m, d.GuestLogLevel)
	if err != nil {
		return nil, err
	}
	// hvc0 is the virtio console below; the NAT network hands out its
	// addresses by DHCP; a panic ends the VM so the host sees it.
	// The vsock device reaches this process alone: the guest's channel
	// needs no key (transport.GuestMux.PrivateVsock).
	cmdline := append([]string{"console=hvc0", "quiet", "panic=-1", "berth.ip=dhcp", "berth.vsock=private"}, params...)

	var fsDevs []vz.DirectorySharingDeviceConfiguration
	for _, sh := range m.Shares {
		dev, err := shareDevice(sh.Tag, sh.HostPath, sh.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("shared folder %s: %w", sh.HostPath, err)
		}
		fsDevs = append(fsDevs, dev)
	}
	if !d.NoRosetta {
		dev, err := rosettaDevice()
		switch {
		case err != nil:
			d.log.Info("Rosetta not shared with the guest", "why", err)
		case dev != nil:
			fsDevs = append(fsDevs, dev)
			cmdline = append(cmdline, "berth.rosetta="+rosettaTag)
		}
	}

	boot, err := vz.NewLinuxBootLoader(kernel, vz.WithCommandLine(strings.Join(cmdline, " ")), vz.WithInitrd(m.Initrd))
	if err != nil {
		return nil, fmt.Errorf("boot loader: %w", err)
	}
	cpus := uint(m.CPUs)
	if lo, hi := vz.VirtualMachineConfigurationMinimumAllowedCPUCount(), vz.VirtualMachineConfigurationMaximumAllowedCPUCount(); cpus < lo || cpus > hi {
		return nil, fmt.Errorf("%d CPUs: this Mac allows %d to %d", cpus, lo, hi)
	}
	mem := uint64(m.MemoryMiB) << 20
	if lo, hi := vz.VirtualMachineConfigurationMinimumAllowedMemorySize(), vz.VirtualMachineConfigurationMaximumAllowedMemorySize(); mem < lo || mem > hi {
		return nil, fmt.Errorf("%d MiB of memory: this Mac allows %d to %d MiB", m.MemoryMiB, lo>>20, hi>>20)
	}
	cfg, err := vz.NewVirtualMachineConfiguration(boot, cpus, mem)
	if err != nil {
		return nil, err
	}

	platform, err := d.platform(m)
	if err != nil {
		return nil, err
	}
	cfg.SetPlatformVirtualMachineConfiguration(platform)

	console, err := vz.NewFileSerialPortAttachment(filepath.Join(m.StateDir, driver.ConsoleLog), true)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	serial, err := vz.NewVirtioConsoleDeviceSerialPortConfiguration(console)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	cfg.SetSerialPortsVirtualMachineConfiguration([]*vz.VirtioConsoleDeviceSerialPortConfiguration{serial})

	// The guest syncs and trims the disk itself at shutdown; fsync on the
	// host is what makes its flushes durable.
	diskAtt, err := vz.NewDiskImageStorageDeviceAttachmentWithCacheAndSync(filepath.Join(m.StateDir, driver.DataDisk), false,
		vz.DiskImageCachingModeAutomatic, vz.DiskImageSynchronizationModeFsync)
	if err != nil {
		return nil, fmt.Errorf("data disk: %w", err)
	}
	disk, err := vz.NewVirtioBlockDeviceConfiguration(diskAtt)
	if err != nil {
		return nil, fmt.Errorf("data disk: %w", err)
	}
	// The system disk, read-only, is the second (/dev/vdb: berth.sys's
	// default).
	sysAtt, err := vz.NewDiskImageStorageDeviceAttachment(m.System, true)
	if err != nil {
		return nil, fmt.Errorf("system disk: %w", err)
	}
	sysDisk, err := vz.NewVirtioBlockDeviceConfiguration(sysAtt)
	if err != nil {
		return nil, fmt.Errorf("system disk: %w", err)
	}
	cfg.SetStorageDevicesVirtualMachineConfiguration([]vz.StorageDeviceConfiguration{disk, sysDisk})

	nat, err := vz.NewNATNetworkDeviceAttachment()
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	nic, err := vz.NewVirtioNetworkDeviceConfiguration(nat)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	mac, err := stableMAC(filepath.Join(m.StateDir, macFile))
	if err != nil {
		return nil, err
	}
	nic.SetMACAddress(mac)
	cfg.SetNetworkDevicesVirtualMachineConfiguration([]*vz.VirtioNetworkDeviceConfiguration{nic})

	entropy, err := vz.NewVirtioEntropyDeviceConfiguration()
	if err != nil {
		return nil, err
	}
	cfg.SetEntropyDevicesVirtualMachineConfiguration([]*vz.VirtioEntropyDeviceConfiguration{entropy})

	balloon, err := vz.NewVirtioTraditionalMemoryBalloonDeviceConfiguration()
	if err != nil {
		return nil, err
	}
	cfg.SetMemoryBalloonDevicesVirtualMachineConfiguration([]vz.MemoryBalloonDeviceConfiguration{balloon})

	vsock, err := vz.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("vsock: %w", err)
	}
	cfg.SetSocketDevicesVirtualMachineConfiguration([]vz.SocketDeviceConfiguration{vsock})

	if len(fsDevs) > 0 {
		cfg.SetDirectorySharingDevicesVirtualMachineConfiguration(fsDevs)
	}
	if ok, err := cfg.Validate(); !ok || err != nil {
		return nil, fmt.Errorf("VM configuration: %v", err)
	}
	return cfg, nil
}

// bootKernel is the kernel file to boot. Apple's boot loader on arm64
// wants the uncompressed Image; make guest writes it next to the gzip'd
// vmlinuz that QEMU boots.
func bootKernel(kernel string) (string, error) {
	if runtime.GOARCH != "arm64" {
		return kernel, nil
	}
	f, err := os.Open(kernel)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	head := make([]byte, 2)
	_, err = f.Read(head)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", kernel, err)
	}
	if !bytes.Equal(head, []byte{0x1f, 0x8b}) {
		return kernel, nil
	}
	img := filepath.Join(filepath.Dir(kernel), "Image")
	if _, err := os.Stat(img); err != nil {
		return "", fmt.Errorf("kernel %s is compressed and there is no uncompressed Image next to it (build it with `make guest GUEST_ARCH=arm64`)", kernel)
	}
	return img, nil
}

// platform is the generic platform with the machine's persistent identity.
func (d *Driver) platform(m *driver.Machine) (*vz.GenericPlatformConfiguration, error) {
	path := filepath.Join(m.StateDir, machineIDFile)
	var id *vz.GenericMachineIdentifier
	if b, err := os.ReadFile(path); err == nil {
		if id, err = vz.NewGenericMachineIdentifierWithData(b); err != nil {
			d.log.Warn("machine identifier unreadable; making a new one (a saved state cannot be resumed)", "err", err)
		}
	}
	if id == nil {
		var err error
		if id, err = vz.NewGenericMachineIdentifier(); err != nil {
			return nil, fmt.Errorf("machine identifier: %w", err)
		}
		if err := fsutil.WriteFileAtomic(path, id.DataRepresentation(), 0o600); err != nil {
			return nil, fmt.Errorf("machine identifier: %w", err)
		}
	}
	return vz.NewGenericPlatformConfiguration(vz.WithGenericMachineIdentifier(id))
}

// stableMAC reads the machine's MAC address, or makes and keeps a random
// locally administered one.
func stableMAC(path string) (*vz.MACAddress, error) {
	if b, err := os.ReadFile(path); err == nil {
		if hw, err := net.ParseMAC(strings.TrimSpace(string(b))); err == nil {
			return vz.NewMACAddress(hw)
		}
	}
	mac, err := vz.NewRandomLocallyAdministeredMACAddress()
	if err != nil {
		return nil, fmt.Errorf("MAC address: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(mac.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("MAC address: %w", err)
	}
	return mac, nil
}

func shareDevice(tag, hostPath string, ro bool) (*vz.VirtioFileSystemDeviceConfiguration, error) {
	dir, err := vz.NewSharedDirectory(hostPath, ro)
	if err != nil {
		return nil, err
	}
	share, err := vz.NewSingleDirectoryShare(dir)
	if err != nil {
		return nil, err
	}
	dev, err := vz.NewVirtioFileSystemDeviceConfiguration(tag)
	if err != nil {
		return nil, err
	}
	dev.SetDirectoryShare(share)
	return dev, nil
}

// watch follows the VM's state until it stops. A stop nobody asked for
// (the guest powered off or panicked, the framework failed) is recorded
// as the machine's exit.
func (d *Driver) watch(vm *vz.VirtualMachine, done chan struct{}) {
	notify := vm.StateChangedNotify()
	if st := vm.State(); st == vz.VirtualMachineStateStopped || st == vz.VirtualMachineStateError {
		d.ended(vm, done, fmt.Sprintf("the VM stopped (%v)", st)) // before we watched
		return
	}
	for {
		select {
		case st := <-notify:
			if st == vz.VirtualMachineStateStopped || st == vz.VirtualMachineStateError {
				d.ended(vm, done, fmt.Sprintf("the VM stopped (%v)", st))
				return
			}
		case <-done: // ended without ever running (see Stop)
			return
		}
	}
}

// ended records that vm's run is over, once: the driver is Stopped, done
// is closed, and why becomes the exit unless a stop was asked for.
func (d *Driver) ended(vm *vz.VirtualMachine, done chan struct{}, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.vm != vm {
		return
	}
	exit := ""
	if why != "" {
		exit = why + "; see " + filepath.Join(d.m.StateDir, driver.ConsoleLog)
	}
	if d.life.End(exit) {
		d.log.Warn("machine died", "machine", d.m.Name, "why", why)
	}
	d.vm, d.sock = nil, nil
	close(done)
}

// Stop implements driver.Driver. Graceful: the guest's control API shuts
// it down (engine stop, fstrim, sync, power off), then the framework's
// power button; forced, or if the guest does not go in time (default
// 60 s): the VM is stopped at once.
func (d *Driver) Stop(ctx context.Context, force bool) error {
	d.mu.Lock()
	vm, done := d.vm, d.done
	if vm == nil {
		d.mu.Unlock()
		return nil
	}
	d.life.BeginStop()
	d.mu.Unlock()

	if vm.State() == vz.VirtualMachineStateStopped {
		d.ended(vm, done, "") // a start that failed before the VM ran
		return nil
	}
	ctx, cancel := driver.StopContext(ctx)
	defer cancel()
	var err error
	if !force {
		err = d.Control().Shutdown(ctx)
		if err != nil && vm.CanRequestStop() {
			_, err = vm.RequestStop()
		}
		if err == nil {
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				err = fmt.Errorf("guest did not power off in time: %w", ctx.Err())
			}
		}
		d.log.Warn("graceful stop failed; forcing", "err", err)
	}
	if vm.CanStop() {
		if serr := vm.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop the VM: %w", serr))
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.Join(err, errors.New("the VM did not stop"))
	}
	if err != nil {
		return fmt.Errorf("stop: %w (forced)", err)
	}
	return nil
}

// Status implements driver.Driver. PID is 0: the VM runs in this process.
func (d *Driver) Status(context.Context) (driver.Status, error) { return d.status(), nil }

func (d *Driver) status() driver.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.life.Status()
	if d.vm != nil {
		st.Accel = "vz"
	}
	return st
}

// DialGuest implements driver.Driver: a virtio-vsock connection to the
// guest port, made by the framework.
func (d *Driver) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	sock := d.sock
	d.mu.Unlock()
	if sock == nil {
		return nil, fmt.Errorf("dial guest port %d: %w", port, driver.ErrNotRunning)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := sock.Connect(port)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{c, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("dial guest port %d: %w", port, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() { // Connect cannot be cancelled; close what it brings
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("dial guest port %d: %w", port, ctx.Err())
	}
}

// Control is a client of the guest's control API.
func (d *Driver) Control() *control.Client {
	return &control.Client{Dial: func(ctx context.Context) (net.Conn, error) {
		return d.DialGuest(ctx, transport.PortControl)
	}}
}

// SetMemoryTarget implements driver.Balloon: the guest's balloon driver
// gives memory back to macOS down to mib (or takes it again).
func (d *Driver) SetMemoryTarget(ctx context.Context, mib int) error {
	d.mu.Lock()
	vm, m := d.vm, d.m
	d.mu.Unlock()
	if vm == nil {
		return fmt.Errorf("memory target: %w", driver.ErrNotRunning)
	}
	if mib < 128 || mib > m.MemoryMiB {
		return fmt.Errorf("memory target %d MiB: want 128 to %d", mib, m.MemoryMiB)
	}
	for _, dev := range vm.MemoryBalloonDevices() {
		if b := vz.AsVirtioTraditionalMemoryBalloonDevice(dev); b != nil {
			b.SetTargetVirtualMachineMemorySize(uint64(mib) << 20)
			return nil
		}
	}
	return errors.New("memory target: the VM has no balloon device")
}

var (
	_ driver.Driver  = (*Driver)(nil)
	_ driver.Balloon = (*Driver)(nil)
)
