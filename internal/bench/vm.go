package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/qemu"
	"github.com/berth-dev/berth/vm/transport"
)

// The VM section: boots of the QEMU machine from `make guest`, each from a
// stopped QEMU with an already formatted data disk (what `berth start`
// does every day), timed from starting QEMU.
func init() {
	accel := vmAccelLabel()
	register(Scenario{
		Section: "VM", Name: "boot → guest agent answers (" + accel + ")", Unit: "ms", Target: "–", Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return vmBoots(b, func(s vmSample) float64 { return s.agent })
		},
	})
	register(Scenario{
		Section: "VM", Name: "boot → `docker version` answers (" + accel + ")", Unit: "ms", Target: "≤ 2500 ms TCG, ≤ 1500 ms KVM", Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return vmBoots(b, func(s vmSample) float64 { return s.docker })
		},
	})
	register(Scenario{
		Section: "VM", Name: "guest kernel start → engine ready, in the guest (" + accel + ")", Unit: "ms", Target: "–", Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return vmBoots(b, func(s vmSample) float64 { return s.guest })
		},
	})
	register(Scenario{
		// CPU time is what boot costs under emulation whatever else the
		// machine runs; wall times above grow with the host's load.
		Section: "VM", Name: "QEMU CPU time, start → engine ready (" + accel + ")", Unit: "ms", Target: "–", Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) { return vmBoots(b, func(s vmSample) float64 { return s.cpu }) },
	})
	register(Scenario{
		Section: "VM", Name: "QEMU RSS idle (-m 1024, 2 CPUs)", Unit: "MB", Target: "–", Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return vmBoots(b, func(s vmSample) float64 { return s.rss })
		},
	})
}

type vmSample struct{ agent, docker, guest, cpu, rss float64 }

var vmResults []vmSample

// vmBoots boots the VM a few times (boots are slow under TCG: at most 5)
// and keeps every figure of each boot, so the VM scenarios share them.
func vmBoots(b *Bench, pick func(vmSample) float64) ([]float64, error) {
	if vmResults == nil {
		res, err := runVMBoots(b, min(b.N, 5))
		if err != nil {
			return nil, err
		}
		vmResults = res
	}
	var out []float64
	for _, s := range vmResults {
		out = append(out, pick(s))
	}
	return out, nil
}

func runVMBoots(b *Bench, n int) ([]vmSample, error) {
	dir := filepath.Join(testkit.RepoRoot(), "build", "guest", "out", runtime.GOARCH)
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("needs the guest image (make guest): %w", err)
		}
	}
	m := &driver.Machine{Name: "bench", CPUs: 2, MemoryMiB: 1024, DiskGiB: 8, Kernel: kernel, Initrd: initrd, StateDir: b.T.TempDir()}
	d := qemu.New(nil)
	defer d.Stop(context.Background(), true)

	sock := filepath.Join(b.T.TempDir(), "docker.sock")
	l, err := transport.Listen("unix://" + sock)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	go transport.Forward(l, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return d.DialGuest(ctx, transport.PortEngine)
	}, nil)

	boot := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		return d.Start(ctx, m)
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d.Stop(ctx, false)
	}
	// First boot formats the disk and probes the accelerator: not measured.
	if err := boot(); err != nil {
		return nil, err
	}
	stop()

	var out []vmSample
	for i := 0; i < n; i++ {
		var s vmSample
		t0 := time.Now()
		// Start returns when the engine answers /_ping over the channel:
		// that is "agent answers". Then the CLI's first full answer.
		if err := boot(); err != nil {
			return nil, err
		}
		s.agent = ms(time.Since(t0))
		s.cpu = cpuMS(d.Status1().PID)
		cmd := exec.Command(testkit.DockerCLI, "-H", "unix://"+sock, "version", "--format", "{{.Server.Os}}")
		if outb, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(outb)) != "linux" {
			return nil, fmt.Errorf("docker version through the VM: %v: %s", err, outb)
		}
		s.docker = ms(time.Since(t0))
		h, err := d.Control().Health(context.Background())
		if err != nil {
			return nil, err
		}
		s.guest = ms(time.Duration(h.BootTime))
		time.Sleep(3 * time.Second) // idle
		s.rss = RSS([]int{d.Status1().PID})
		fmt.Fprintf(os.Stderr, "  VM boot %d: agent %.0f ms, docker version %.0f ms, in guest %.0f ms, QEMU CPU %.0f ms, RSS %.0f MB (%s)\n",
			i+1, s.agent, s.docker, s.guest, s.cpu, s.rss, d.Info().Accel)
		stop()
		out = append(out, s)
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
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) * 10 // USER_HZ is 100
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
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		return "KVM if the probe passes"
	}
	return "TCG"
}
