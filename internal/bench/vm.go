package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/qemu"
)

// The VM section: the machine as users get it, through the real berth
// CLI and host agent: `berth start` from a stopped machine (data disk
// already formatted, hostd not running) to the stock `docker version`
// answering through the forwarded socket, split into the phases the host
// agent reports (the guest's on its own clock), next to the floor: the same
// kernel and QEMU flags with a trivial static /init that powers off at
// once, booted in the same run, alternating with Berth's boots; what a
// container costs through the VM against the same engine on this host; the
// idle footprint; and a published port's throughput, through hostd's
// forward and natively.
func init() {
	accel := vmAccelLabel()
	berth := []string{"berth"}
	vmScenario := func(name, unit, target string, engines []string, run func(b *Bench, e *Engine) ([]float64, error)) {
		register(Scenario{Section: "VM", Name: name, Unit: unit, Target: target, Engines: engines, Run: run})
	}
	boot := func(name, target string, pick func(vmBoot) (float64, bool)) {
		vmScenario(name, "ms", target, berth, func(b *Bench, e *Engine) ([]float64, error) { return vmPick(b, pick) })
	}
	always := func(f func(vmBoot) float64) func(vmBoot) (float64, bool) {
		return func(s vmBoot) (float64, bool) { return f(s), true }
	}
	boot("`berth start` → `docker version` answers ("+accel+", 2 CPUs, 2 GiB, home shared)", "≤ 2500 ms TCG, ≤ 1500 ms KVM",
		always(func(s vmBoot) float64 { return s.docker }))
	boot("floor: the same kernel and QEMU flags, a trivial static /init: QEMU start → /init runs", "–",
		always(func(s vmBoot) float64 { return s.floor.VM + s.floor.Kernel }))
	boot("Berth − floor (same boot pair)", "≤ 800 ms", always(func(s vmBoot) float64 { return s.docker - s.floor.VM - s.floor.Kernel }))
	for _, ph := range []struct{ name, label string }{
		{"vm", "QEMU start → the guest kernel starts (firmware, kernel load)"},
		{"kernel", "kernel start → it runs /init"},
		{"initrd", "initramfs unpack (within the kernel's part)"},
		{"init", "berth-init starts (Go runtime, package init)"},
		{"modules", "drivers: the host channel's modules"},
		{"system", "system disk mounted"},
		{"disk", "data disk checked and mounted"},
		{"engine-start", "engine process starts (Go runtime, package init, paged in from the system disk)"},
		{"engine-open", "engine opens its state and answers /_ping"},
		{"network", "network modules and addresses (alongside)"},
		{"shares", "shared folders mounted (alongside)"},
		{"connect", "engine answers in the guest → through the host channel"},
		{"ready", "host agent's last steps (network and shares awaited, version)"},
	} {
		boot("phase: "+ph.label, "–", func(s vmBoot) (float64, bool) { v, ok := s.phases[ph.name]; return v, ok })
		switch ph.name {
		case "vm":
			boot("phase (floor): QEMU start → the guest kernel starts", "–", always(func(s vmBoot) float64 { return s.floor.VM }))
		case "kernel":
			boot("phase (floor): kernel start → it runs /init", "–", always(func(s vmBoot) float64 { return s.floor.Kernel }))
		}
	}
	boot("outside the phases: the CLI, hostd's own start, virtiofsd, `docker version`", "–", func(s vmBoot) (float64, bool) {
		return s.docker - s.bootEnd, s.bootEnd > 0
	})
	boot("guest kernel start → engine ready, in the guest ("+accel+")", "–", always(func(s vmBoot) float64 { return s.guest }))
	boot("QEMU CPU time per boot, start → ready ("+accel+")", "–", always(func(s vmBoot) float64 { return s.cpu }))
	boot("first `docker run --rm busybox true` right after `berth start` ("+accel+")", "–", always(func(s vmBoot) float64 { return s.first }))
	vmScenario("idle RSS: qemu + hostd (2 GiB guest), after 60 s idle", "MB", "≤ 300 MB", berth, func(b *Bench, e *Engine) ([]float64, error) {
		vm, err := theVM(b)
		if err != nil {
			return nil, err
		}
		time.Sleep(60 * time.Second) // idle
		return []float64{RSS([]int{vm.status.MachinePID, vm.hostdPID()})}, nil
	})
	vmScenario("`docker run --rm busybox true`, through the VM", "ms", "≤ native + 30 ms", berth,
		func(b *Bench, e *Engine) ([]float64, error) {
			vm, err := theVM(b)
			if err != nil {
				return nil, err
			}
			return vm.engine.Time(min(b.N, 10), "run", "--rm", vm.ref, "true")
		})
	vmScenario("`docker run --rm busybox true`, native engine on this host", "ms", "–", nil,
		func(b *Bench, e *Engine) ([]float64, error) {
			ref := b.Registry + "/bench/busybox:vm"
			testkit.Push(b.T, ref, testkit.BusyboxImage(b.T))
			if r := e.Docker.Run(nil, "pull", "-q", ref); r.Code != 0 {
				return nil, fmt.Errorf("pull: %s", r.Stderr)
			}
			return e.Time(min(b.N, 10), "run", "--rm", ref, "true")
		})
	vmScenario("published port: HTTP download from 127.0.0.1, through the VM (hostd forward)", "MB/s", "≥ 25 % of native", berth,
		func(b *Bench, e *Engine) ([]float64, error) {
			vm, err := theVM(b)
			if err != nil {
				return nil, err
			}
			return portThroughput(b, vm.engine, vm.ref)
		})
	vmScenario("published port: HTTP download from 127.0.0.1, native engine on this host", "MB/s", "–", nil,
		func(b *Bench, e *Engine) ([]float64, error) {
			ref := b.Registry + "/bench/busybox:vm"
			testkit.Push(b.T, ref, testkit.BusyboxImage(b.T))
			e.Docker.Run(nil, "pull", "-q", ref)
			return portThroughput(b, e, ref)
		})
}

// vmBoot is one measured boot: to `docker version`, its phases (ms, by
// name, from the host agent's status) and where the last one ended, the
// guest's own kernel start → engine ready, QEMU's CPU time to ready, the
// first container run after it (the modules containers need may still be
// loading then), and the floor boot that came right after it.
type vmBoot struct {
	docker, guest, cpu, first float64
	phases                    map[string]float64
	bootEnd                   float64 // the last phase's end, since QEMU started
	floor                     floorBoot
}

// benchVM is the machine the VM scenarios share: its boots are measured
// once, then it stays up for the container and port scenarios.
type benchVM struct {
	home   string
	env    []string
	berth  string
	boots  []vmBoot
	status hostapi.Status
	engine *Engine // the docker CLI through the VM's socket
	ref    string  // the busybox test image, as the guest pulls it
	err    error
}

var vmFixture *benchVM

func theVM(b *Bench) (*benchVM, error) {
	if vmFixture == nil {
		vmFixture = startBenchVM(b, min(b.N, 5))
	}
	return vmFixture, vmFixture.err
}

// vmPick is one figure of each boot; a figure no boot has (a build that
// does not report it) is an error.
func vmPick(b *Bench, pick func(vmBoot) (float64, bool)) ([]float64, error) {
	vm, err := theVM(b)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, s := range vm.boots {
		if v, ok := pick(s); ok {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("not reported by this build")
	}
	return out, nil
}

func startBenchVM(b *Bench, n int) *benchVM {
	vm := &benchVM{}
	vm.err = vm.start(b, n)
	return vm
}

func (vm *benchVM) start(b *Bench, n int) error {
	kernel, _ := testkit.GuestImage(b.T)
	vm.berth = testkit.Binary(b.T, "berth")
	home, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return err
	}
	vm.home = home
	b.T.Cleanup(func() {
		vm.run("stop", "-f")
		os.RemoveAll(home)
	})
	vm.env = append(os.Environ(), "BERTH_HOME="+home, "BERTH_GUEST_DIR="+filepath.Dir(kernel),
		"BERTH_AGENT="+testkit.Binary(b.T, "berth-agent"), "DOCKER_CONFIG="+b.T.TempDir())
	_, port, _ := net.SplitHostPort(b.Registry)
	guestReg := "10.0.2.2:" + port
	s := config.Defaults()
	s.Driver, s.CPUs, s.MemoryMiB, s.DiskGiB = "qemu", 2, 2048, 16
	s.InsecureRegistries = []string{guestReg}
	if err := config.Save(config.Paths{Home: home}, s, config.Limits{}); err != nil {
		return err
	}
	p := config.Paths{Home: home}
	vm.engine = &Engine{Name: "berth", Host: p.DockerHost(), Docker: testkit.NewDocker(b.T, p.DockerHost())}

	// The first boot formats the data disk (and probes the accelerator):
	// not measured. The image for the container scenarios is pulled then.
	if out, err := vm.run("start"); err != nil {
		return fmt.Errorf("berth start: %v: %s", err, out)
	}
	ref := b.Registry + "/bench/busybox:vm"
	testkit.Push(b.T, ref, testkit.BusyboxImage(b.T))
	vm.ref = guestReg + "/bench/busybox:vm"
	if r := vm.engine.Docker.Run(nil, "pull", "-q", vm.ref); r.Code != 0 {
		return fmt.Errorf("pull through the VM: %s", r.Stderr)
	}
	floor, err := newFloor(b, s, home)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if out, err := vm.run("stop"); err != nil {
			return fmt.Errorf("berth stop: %v: %s", err, out)
		}
		// The floor just before, on the same cores, the machine stopped.
		ft, err := floor.boot()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "  floor boot %d: QEMU start → kernel %.0f ms, kernel → /init %.0f ms, QEMU start → exit %.0f ms (load %s)\n",
			i+1, ft.VM, ft.Kernel, ft.Total, loadAvg())
		t0 := time.Now()
		if out, err := vm.run("start"); err != nil {
			return fmt.Errorf("berth start: %v: %s", err, out)
		}
		cmd := exec.Command(testkit.DockerCLI, "-H", p.DockerHost(), "version", "--format", "{{.Server.Os}}")
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "linux" {
			return fmt.Errorf("docker version through the VM: %v: %s", err, out)
		}
		s := vmBoot{docker: ms(time.Since(t0)), phases: map[string]float64{}}
		if err := vm.readStatus(); err != nil {
			return err
		}
		s.cpu = cpuMS(vm.status.MachinePID)
		s.guest = guestBootMS(filepath.Join(p.MachineDir(), "console.log"))
		var line []string
		for _, ph := range vm.status.Boot {
			s.phases[ph.Name] = ph.EndMS - ph.StartMS
			s.bootEnd = max(s.bootEnd, ph.EndMS)
			line = append(line, fmt.Sprintf("%s %.0f", ph.Name, ph.EndMS-ph.StartMS))
		}
		t1 := time.Now()
		if r := vm.engine.Docker.Run(nil, "run", "--rm", vm.ref, "true"); r.Code != 0 {
			return fmt.Errorf("first docker run after start: %s", r.Stderr)
		}
		s.first = ms(time.Since(t1))
		fmt.Fprintf(os.Stderr, "  VM boot %d: docker version %.0f ms, in guest %.0f ms, QEMU CPU %.0f ms, first docker run %.0f ms (%s, load %s)\n    phases (ms): %s\n",
			i+1, s.docker, s.guest, s.cpu, s.first, vm.status.Accel, loadAvg(), strings.Join(line, ", "))
		s.floor = ft
		vm.boots = append(vm.boots, s)
	}
	return nil
}

func (vm *benchVM) run(args ...string) ([]byte, error) {
	cmd := exec.Command(vm.berth, args...)
	cmd.Env = vm.env
	return cmd.CombinedOutput()
}

func (vm *benchVM) readStatus() error {
	out, err := vm.run("status", "--json")
	if err != nil {
		return fmt.Errorf("berth status: %v: %s", err, out)
	}
	return json.Unmarshal(out, &vm.status)
}

// floorBoot is a floor boot's times (ms; see qemu.FloorTimes).
type floorBoot struct{ VM, Kernel, Total float64 }

// floorVM boots the floor: Berth's machine with the same settings, kernel
// and QEMU flags, and an initramfs of a trivial static /init
// (internal/bench/floorinit) that prints the time since the kernel started
// and powers off.
type floorVM struct {
	m      *driver.Machine
	initrd string
}

func newFloor(b *Bench, s config.Settings, home string) (*floorVM, error) {
	kernel, initrd := testkit.GuestImage(b.T)
	dir := b.T.TempDir()
	f := &floorVM{m: &driver.Machine{Name: "floor", CPUs: s.CPUs, MemoryMiB: s.MemoryMiB, DiskGiB: s.DiskGiB,
		Kernel: kernel, Initrd: initrd, StateDir: filepath.Join(dir, "machine")}}
	// The shared folders hostd gives the machine (the home folder).
	for i, sh := range s.SharedFolders {
		f.m.Shares = append(f.m.Shares, driver.Share{Tag: fmt.Sprintf("share%d", i), HostPath: sh, GuestPath: sh})
	}
	init := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", init, "./internal/bench/floorinit")
	cmd.Dir, cmd.Env = testkit.RepoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the floor's /init: %v: %s", err, out)
	}
	body, err := os.ReadFile(init)
	if err != nil {
		return nil, err
	}
	f.initrd = filepath.Join(dir, "floor.cpio")
	return f, os.WriteFile(f.initrd, newc([]cpioEntry{
		{name: "dev", mode: 0o040755}, {name: "dev/console", mode: 0o020600, rdev: [2]int{5, 1}},
		{name: "init", mode: 0o100755, data: body}}), 0o644)
}

func (f *floorVM) boot() (floorBoot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ft, err := qemu.New(slog.New(slog.DiscardHandler)).Floor(ctx, f.m, f.initrd)
	return floorBoot{ms(ft.VM), ms(ft.Kernel), ms(ft.Total)}, err
}

type cpioEntry struct {
	name string
	mode int
	rdev [2]int
	data []byte
}

// newc is a newc cpio archive (the initramfs format) of entries, owned by
// root, dated 0.
func newc(entries []cpioEntry) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, e := range append(entries, cpioEntry{name: "TRAILER!!!"}) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, e.rdev[0], e.rdev[1], len(e.name)+1, 0)
		b.WriteString(e.name + "\x00")
		pad()
		b.Write(e.data)
		pad()
	}
	return b.Bytes()
}

// hostdPID reads the pid hostd keeps in its lock file.
func (vm *benchVM) hostdPID() int {
	b, _ := os.ReadFile(config.Paths{Home: vm.home}.LockFile())
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

var engineReady = regexp.MustCompile(`msg="engine ready" role=init since_kernel_start=([0-9.]+)(ms|s)`)

// guestBootMS is the guest's own "kernel start → engine ready" of the last
// boot in its console log.
func guestBootMS(console string) float64 {
	b, _ := os.ReadFile(console)
	m := engineReady.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return 0
	}
	last := m[len(m)-1]
	v, _ := strconv.ParseFloat(string(last[1]), 64)
	if string(last[2]) == "s" {
		v *= 1000
	}
	return v
}

// portThroughput publishes a container's HTTP server on a free host port
// and downloads a 32 MiB file from it through 127.0.0.1, in MB/s.
func portThroughput(b *Bench, e *Engine, ref string) ([]float64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	name := fmt.Sprintf("bench-web-%d", port)
	r := e.Docker.Run(nil, "run", "-d", "--name", name, "-p", fmt.Sprintf("%d:80", port), ref, "sh", "-c",
		"dd if=/dev/zero of=/var/www/big bs=1M count=32 2>/dev/null && exec httpd -f -p 80 -h /var/www")
	defer e.Docker.Run(nil, "rm", "-f", name)
	if r.Code != 0 {
		return nil, fmt.Errorf("run -p: %s", r.Stderr)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/big", port)
	get := func() (int64, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return io.Copy(io.Discard, resp.Body)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if n, err := get(); err == nil && n == 32<<20 {
			break
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("the published port did not serve the file: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out []float64
	for i := 0; i < min(b.N, 5); i++ {
		t0 := time.Now()
		n, err := get()
		if err != nil {
			return nil, err
		}
		out = append(out, float64(n)/1e6/time.Since(t0).Seconds())
	}
	return out, nil
}

// cpuMS is the user+system CPU time of pid so far (Linux), in ms.
func cpuMS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: utime and stime are 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) * 10 // USER_HZ is 100
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// vmAccelLabel names the accelerator the QEMU driver will use here, from
// its probe cache (written by the first boot on this host).
func vmAccelLabel() string {
	dir, err := os.UserCacheDir()
	if err == nil {
		var c struct{ Accel string }
		if b, err := os.ReadFile(filepath.Join(dir, "berth", "accel-probe.json")); err == nil && json.Unmarshal(b, &c) == nil && c.Accel != "" {
			return strings.ToUpper(c.Accel)
		}
	}
	if runtime.GOOS == "linux" {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			return "KVM if the probe passes"
		}
	}
	return "TCG"
}
