package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/vm/driver"
)

// FloorMarker begins the line a floor boot's /init prints, followed by
// the nanoseconds since the kernel started (CLOCK_BOOTTIME).
const FloorMarker = "BERTH-FLOOR"

// FloorTimes is a floor boot, measured.
type FloorTimes struct {
	VM     time.Duration // QEMU starts → the guest kernel starts (the host's clock)
	Kernel time.Duration // the kernel starts → /init runs (the guest's clock)
	Total  time.Duration // QEMU starts → it exits, the guest powered off
}

// Floor boots what Start would, with the same kernel and QEMU flags, but
// with initrd for the initramfs: one whose /init prints FloorMarker and
// the time since the kernel started, then powers off. It is the floor under
// Berth's boot; internal/bench measures both side by side. m gets a data
// disk of its own in its state dir.
func (d *Driver) Floor(ctx context.Context, m *driver.Machine, initrd string) (FloorTimes, error) {
	var ft FloorTimes
	if err := d.prepare(m); err != nil {
		return ft, err
	}
	arch := d.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	bin := d.Binary
	if bin == "" {
		bin = binary(arch)
	}
	want := d.Accel
	if arch != runtime.GOARCH {
		want = "tcg"
	}
	accel, err := chooseAccel(ctx, d.log, want, bin, m)
	if err != nil {
		return ft, err
	}
	fsd, socks, err := startVirtiofsd(ctx, m)
	if err != nil {
		return ft, err
	}
	defer func() {
		for _, p := range fsd {
			p.Kill()
			p.Wait()
		}
	}()
	args, err := buildArgs(m, qemuConfig{arch: arch, accel: accel, stateDir: m.StateDir, logLevel: d.GuestLogLevel,
		extra: d.KernelArgs, fsSockets: socks, floor: initrd})
	if err != nil {
		return ft, err
	}
	for _, s := range []string{qmpSock, agentSock} {
		os.Remove(filepath.Join(m.StateDir, s))
	}
	for i := 0; i < lanes; i++ {
		os.Remove(lanePath(m.StateDir, i))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ft, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	setProcAttr(cmd)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return ft, fmt.Errorf("run %s: %w", bin, err)
	}
	found := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, FloorMarker+" ")
		if i < 0 || found {
			continue
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(line[i+len(FloorMarker)+1:]), 10, 64)
		if err != nil {
			continue
		}
		found = true
		ft.Kernel = time.Duration(ns)
		ft.VM = max(0, time.Since(t0)-ft.Kernel)
	}
	err = cmd.Wait()
	ft.Total = time.Since(t0)
	if !found {
		return ft, fmt.Errorf("floor boot: no %s line from the guest (qemu: %v %s)", FloorMarker, err, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return ft, fmt.Errorf("floor boot: qemu: %v %s", err, strings.TrimSpace(stderr.String()))
	}
	return ft, nil
}
