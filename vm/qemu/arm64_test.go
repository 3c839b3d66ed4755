package qemu

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// TestArm64Guest boots the guest that Apple silicon runs (make guest
// GUEST_ARCH=arm64, from make cross) under emulation: its kernel, modules
// and static arm64 agent come up, the engine answers as linux/arm64 and
// runs the preloaded arm64 berth/hello, and a graceful stop goes through
// the control API (the virt machine has no ACPI power button).
func TestArm64Guest(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH == "arm64" {
		t.Skip("emulates arm64 on a Linux amd64 host (an arm64 host runs it as its own guest)")
	}
	if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
		t.Skip("needs qemu-system-aarch64 (Debian: qemu-system-arm)")
	}
	dir := filepath.Join(testkit.RepoRoot(), "build", "guest", "out", "arm64")
	m := &driver.Machine{Name: "qa64", CPUs: 2, MemoryMiB: 1024, DiskGiB: 2, StateDir: t.TempDir(),
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	for _, f := range []string{m.Kernel, m.Initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs the arm64 guest (make cross): %v", err)
		}
	}
	d := New(nil)
	d.Arch = "arm64"
	t.Cleanup(func() {
		d.Stop(context.Background(), true)
		if t.Failed() {
			logTail(t, m)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := d.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 guest started in %v under %s", time.Since(t0).Round(time.Millisecond), d.Info().Accel)

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
	if got := strings.TrimSpace(docker.Must("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")); got != "linux/arm64" {
		t.Fatalf("docker version: server %q, want linux/arm64", got)
	}
	if preloadsHello(t, m) {
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(docker.Must("images", "--format", "{{.Repository}}"), "berth/hello") {
			if time.Now().After(deadline) {
				t.Fatal("the bundled arm64 berth/hello was not loaded on first boot")
			}
			time.Sleep(500 * time.Millisecond)
		}
		if out := docker.Must("run", "--rm", "berth/hello"); !strings.Contains(out, "Hello from Berth!") {
			t.Fatalf("berth/hello on arm64 printed %q", out)
		}
	}

	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	if err := d.Stop(sctx, false); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if st := d.Status1(); st.State != driver.Stopped || st.Exit != "" {
		t.Fatalf("after stop: %+v", st)
	}
	console, _ := os.ReadFile(filepath.Join(m.StateDir, driver.ConsoleLog))
	for _, want := range []string{"engine stopped", "power off"} {
		if !strings.Contains(string(console), want) {
			t.Errorf("graceful stop: console has no %q", want)
		}
	}
}
