package qemu

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/drivertest"
	"github.com/berth-dev/berth/vm/transport"
)

// machine is a small VM in a fresh state dir. Tests run under whatever
// accelerator the probe finds (TCG on these machines).
func machine(t *testing.T, engineArgs ...string) *driver.Machine {
	kernel, initrd := testkit.GuestImage(t)
	return &driver.Machine{
		Name: "qt", CPUs: 2, MemoryMiB: 1024, DiskGiB: 4,
		Kernel: kernel, Initrd: initrd, StateDir: t.TempDir(), EngineArgs: engineArgs,
	}
}

func TestBuildArgs(t *testing.T) {
	m := &driver.Machine{Name: "x", CPUs: 2, MemoryMiB: 512, Kernel: "/k", Initrd: "/i", System: "/sys.img", StateDir: "/s",
		EngineArgs: []string{"--insecure-registry=10.0.2.2:5000"}}
	m.Shares = []driver.Share{{Tag: "home", HostPath: "/home/u", GuestPath: "/home/u"}, {Tag: "ro", HostPath: "/x", GuestPath: "/y", ReadOnly: true}}
	args, err := buildArgs(m, qemuConfig{arch: "amd64", accel: "tcg", stateDir: "/s", vsockCID: 7, fsSockets: []string{"/s/fs0.sock", "/s/fs1.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"-M q35", "-accel tcg,tb-size=256", "-cpu max,-erms", "-no-reboot", "-kernel /k", "-initrd /i",
		"berth.engine=--insecure-registry=10.0.2.2:5000", "panic=-1", "name=berth.agent",
		"path=/s/agent.sock,server=on,wait=off", "-qmp unix:/s/qmp.sock", "file=/s/data.img,if=none,id=data", "file=/sys.img,if=none,id=system,format=raw,readonly=on",
		"nvme-ns,bus=nvme0,drive=data,nsid=1", "socket,id=lane3,path=/s/lane3.sock,server=on,wait=off", "virtserialport,chardev=lane3,name=berth.lane3", "nvme-ns,bus=nvme0,drive=system,nsid=2", "berth.disk=/dev/nvme0n1 berth.sys=/dev/nvme0n2",
		"path=/s/console.log,append=on", "vhost-vsock-pci,guest-cid=7", "virtio-balloon-pci,free-page-reporting=on",
		"berth.share=home:/home/u berth.share=ro:/y:ro", "memory-backend-memfd,id=mem,size=512M,share=on",
		"socket,id=fs1,path=/s/fs1.sock", "vhost-user-fs-pci,queue-size=1024,chardev=fs1,tag=ro"} {
		if !strings.Contains(line, want) {
			t.Errorf("missing %q in %s", want, line)
		}
	}
	args, err = buildArgs(m, qemuConfig{arch: "amd64", accel: "whpx", stateDir: "/s"})
	if err != nil || !strings.Contains(strings.Join(args, " "), "-accel whpx,kernel-irqchip=off -M q35") {
		t.Errorf("WHPX without QEMU's irqchip: %v %v", args, err)
	}
	m.EngineArgs = []string{"--label=a b"}
	if _, err := buildArgs(m, qemuConfig{arch: "amd64", accel: "tcg"}); err == nil {
		t.Error("an engine argument with a space was accepted")
	}
}

// TestStateDirPrivate: the state dir, where QEMU makes the guest channel's
// socket, is the user's alone whatever mode it had.
func TestStateDirPrivate(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd.img", driver.SystemDisk} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	m := &driver.Machine{Name: "x", CPUs: 1, MemoryMiB: 256, DiskGiB: 1, Kernel: filepath.Join(dir, "vmlinuz"),
		Initrd: filepath.Join(dir, "initrd.img"), StateDir: state}
	if err := New(nil).prepare(m); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

func TestConformance(t *testing.T) {
	m := machine(t)
	drivertest.Run(t, drivertest.Options{
		New: func(t *testing.T) (driver.Driver, *driver.Machine) {
			d := New(nil)
			t.Cleanup(func() {
				if t.Failed() {
					logTail(t, m)
				}
			})
			return d, m
		},
	})
}

// TestEndToEnd boots the VM and uses it as the host agent will: the stock
// docker CLI through a local socket forwarded over the channel, an image
// pulled from a registry on the host, the data disk across a restart, a
// killed QEMU, and a graceful stop.
func TestEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the registry and docker CLI fixtures run on Linux")
	}
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	_, port, _ := net.SplitHostPort(reg.Addr)
	guestReg := "10.0.2.2:" + port // the host's loopback as QEMU's user network shows it
	testkit.Push(t, reg.Addr+"/e2e/busybox:1", testkit.BusyboxImage(t))

	m := machine(t, "--insecure-registry="+guestReg)
	shared := t.TempDir()
	os.WriteFile(filepath.Join(shared, "hello.txt"), []byte("from the host\n"), 0o644)
	m.Shares = []driver.Share{{Tag: "e2e", HostPath: shared, GuestPath: shared}}
	var hostLog syncBuffer
	d := New(slog.New(slog.NewTextHandler(&hostLog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		d.Stop(context.Background(), true)
		if t.Failed() {
			logTail(t, m)
		}
	})
	start := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		t0 := time.Now()
		if err := d.Start(ctx, m); err != nil {
			t.Fatal(err)
		}
		t.Logf("started in %v (accel %s)", time.Since(t0).Round(time.Millisecond), d.Info().Accel)
	}
	start()

	// The docker socket on the host, forwarded to the guest's engine port.
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := transport.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go transport.Forward(l, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return d.DialGuest(ctx, transport.PortEngine)
	}, func(err error) { t.Logf("forward: %v", err) })
	docker := testkit.NewDocker(t, "unix://"+sock)

	if got := strings.TrimSpace(docker.Must("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")); got != "linux/"+runtime.GOARCH {
		t.Fatalf("docker version: server %q", got)
	}
	// Start returns once the engine answers; the shared folders are
	// mounted meanwhile (hostd waits for them, as this does).
	var h control.Health
	deadline0 := time.Now().Add(time.Minute)
	for {
		var err error
		if h, err = d.Control().Health(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !h.SharesPending && !h.NetworkPending {
			break
		}
		if time.Now().After(deadline0) {
			t.Fatalf("shared folders or network still pending after a minute: %+v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !h.Disk.Mounted || !h.Disk.Formatted || !h.Engine.Ready || h.BootError != "" {
		t.Fatalf("first boot health: %+v", h)
	}
	if len(h.Shares) != 1 || !h.Shares[0].Mounted || h.Shares[0].Path != shared {
		t.Errorf("shared folder: %+v", h.Shares)
	}
	if skew := time.Since(h.Time); skew > 5*time.Second || skew < -5*time.Second {
		t.Errorf("guest clock off by %v", skew)
	}
	t.Logf("guest: kernel %s, boot to engine %v, disk %d MiB", h.KernelVersion, time.Duration(h.BootTime), h.Disk.SizeBytes>>20)
	checkKeySecret(t, d, m, &hostLog)

	// Images bundled in the initramfs (make guest GUEST_IMAGES=…, bin/hello.tar
	// by default) are loaded on first boot.
	if preloadsHello(t, m) {
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(docker.Must("images", "--format", "{{.Repository}}"), "berth/hello") {
			if time.Now().After(deadline) {
				t.Fatal("bundled berth/hello image not loaded on first boot")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The control API's other calls, for real.
	if err := d.Control().SetTime(context.Background(), time.Now()); err != nil {
		t.Errorf("set time: %v", err)
	}
	if _, err := d.Control().Trim(context.Background()); err != nil {
		t.Errorf("fstrim: %v", err)
	}

	// An image pulled through the VM's network lands on the data disk…
	ref := guestReg + "/e2e/busybox:1"
	docker.Must("pull", ref)

	// …and is still there after a graceful stop and a new boot.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := d.Stop(ctx, false); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	cancel()
	if st := d.Status1(); st.State != driver.Stopped || st.Exit != "" {
		t.Fatalf("after stop: %+v", st)
	}
	console, _ := os.ReadFile(filepath.Join(m.StateDir, driver.ConsoleLog))
	for _, want := range []string{"shutting down", "engine stopped", "fstrim", "power off"} {
		if !strings.Contains(string(console), want) {
			t.Errorf("graceful stop: console has no %q", want)
		}
	}
	start()
	if out := docker.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
		t.Fatalf("image gone after restart: %q", out)
	}
	if h, err := d.Control().Health(context.Background()); err != nil || h.Disk.Formatted {
		t.Fatalf("second boot formatted the disk again (or failed): %+v %v", h, err)
	}

	// A QEMU killed from outside is reported, and the next start works.
	pid := d.Status1().PID
	p, _ := os.FindProcess(pid)
	p.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for d.Status1().State != driver.Stopped {
		if time.Now().After(deadline) {
			t.Fatal("killed QEMU still reported running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := d.Status1(); !strings.Contains(st.Exit, "killed") {
		t.Errorf("exit reason %q", st.Exit)
	}
	if _, err := d.DialGuest(context.Background(), transport.PortEngine); err == nil {
		t.Error("dial after the VM died succeeded")
	}
	start()
	docker.Must("version")
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Stop(ctx, false); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// syncBuffer is a bytes.Buffer for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// checkKeySecret: the channel key (which opens the guest's engine and
// control ports over vsock) is in no argument, environment, log or file on
// the host, and in the guest nowhere a process or a container could read
// it: not the kernel's command line, no process's arguments or environment,
// no file in /etc, /run, /tmp or on the data disk.
func checkKeySecret(t *testing.T, d *Driver, m *driver.Machine, hostLog *syncBuffer) {
	t.Helper()
	d.mu.Lock()
	key, pid := d.mux.Key(), d.pid
	d.mu.Unlock()
	hexKey := hex.EncodeToString(key)
	leaks := func(b []byte) bool { return bytes.Contains(b, key) || bytes.Contains(b, []byte(hexKey)) }
	for _, f := range []string{fmt.Sprintf("/proc/%d/cmdline", pid), fmt.Sprintf("/proc/%d/environ", pid)} {
		if b, err := os.ReadFile(f); err != nil || leaks(b) {
			t.Errorf("QEMU's %s has the key (or cannot be read: %v)", filepath.Base(f), err)
		}
	}
	if leaks(hostLog.Bytes()) {
		t.Error("the driver logged the key")
	}
	filepath.WalkDir(m.StateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if found, err := fileHas(p, key, []byte(hexKey)); err != nil || found {
			t.Errorf("%s has the key (or cannot be read: %v)", p, err)
		}
		return nil
	})
	// In the guest, the key comes on stdin into a file no scan reads.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := d.Control().Shell(ctx, control.ShellOptions{Plain: true, Cmd: []string{"sh", "-c",
		`cat > /dev/shm/k; grep -rlF -f /dev/shm/k /proc/cmdline /etc /run /tmp /data /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null; rm /dev/shm/k; echo scanned`}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, hexKey+"\n")
	c.(interface{ CloseWrite() error }).CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	out, _ := io.ReadAll(c)
	if strings.TrimSpace(string(out)) != "scanned" {
		t.Errorf("the key is readable in the guest: %q", out)
	}
}

// fileHas tells whether the file at p holds any of forms, reading only the
// data of a sparse file (the data disk).
func fileHas(p string, forms ...[]byte) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break // no data after off
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return false, err
		}
		for pos := data; pos < hole; pos += int64(len(buf)) - 64 { // chunks overlap by 64 bytes
			n, err := f.ReadAt(buf, pos)
			for _, form := range forms {
				if bytes.Contains(buf[:n], form) {
					return true, nil
				}
			}
			if err != nil {
				break
			}
		}
		off = hole
	}
	return false, nil
}

// preloadsHello tells whether the guest image bundles hello.tar.
func preloadsHello(t *testing.T, m *driver.Machine) bool {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(m.Initrd), "manifest.json"))
	if err != nil {
		return false
	}
	var man struct{ Preload []string }
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	for _, p := range man.Preload {
		if p == "hello.tar" {
			return true
		}
	}
	return false
}

func logTail(t *testing.T, m *driver.Machine) {
	for _, f := range []string{driver.ConsoleLog, qemuLog} {
		b, _ := os.ReadFile(filepath.Join(m.StateDir, f))
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		t.Logf("%s (tail):\n%s", f, b)
	}
}
