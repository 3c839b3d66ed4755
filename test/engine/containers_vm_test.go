package engine_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/qemu"
	"github.com/berth-dev/berth/vm/transport"
)

// TestContainersInTheVM runs containers in Berth's VM, where the engine is
// under PID 1 with cgroup v2 (this host only has v1): limits, OOM kills,
// the pids limit, pause (the v2 freezer), exec and top.
func TestContainersInTheVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	kernel, initrd := testkit.GuestImage(t)
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	_, port, _ := net.SplitHostPort(reg.Addr)
	guestReg := "10.0.2.2:" + port // the host's loopback, seen from QEMU's user network
	testkit.Push(t, reg.Addr+"/vm/busybox:1", testkit.BusyboxImage(t))
	ref := guestReg + "/vm/busybox:1"

	m := &driver.Machine{Name: "ct", CPUs: 2, MemoryMiB: 1024, DiskGiB: 2, Kernel: kernel, Initrd: initrd,
		StateDir: t.TempDir(), EngineArgs: []string{"--insecure-registry=" + guestReg}}
	d := qemu.New(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := d.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background(), true) })
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
	}, func(err error) {})
	dk := testkit.NewDocker(t, "unix://"+sock)
	if v := strings.TrimSpace(dk.Must("info", "--format", "{{.CgroupVersion}}")); v != "2" {
		t.Fatalf("cgroup version in the VM: %q", v)
	}

	if out := dk.Must("run", "--rm", ref, "echo", "hello from the VM"); out != "hello from the VM\n" {
		t.Fatalf("run: %q", out)
	}
	out := dk.Must("run", "--rm", "--cpus", "0.5", "-m", "64m", "--pids-limit", "40", ref, "sh", "-c",
		"cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max")
	if out != "50000 100000\n67108864\n40\n" {
		t.Errorf("limits under cgroup v2: %q", out)
	}
	if r := dk.Run(nil, "run", "--name", "hog", "-m", "32m", ref, "tail", "/dev/zero"); r.Code != 137 {
		t.Errorf("memory hog: exit %d %s", r.Code, r.Stderr)
	}
	if got := dk.Must("inspect", "-f", "{{.State.OOMKilled}}", "hog"); got != "true\n" {
		t.Errorf("OOMKilled under cgroup v2: %q", got)
	}
	dk.Must("run", "-d", "--name", "svc", ref, "sleep", "300")
	if got := dk.Must("exec", "svc", "sh", "-c", "echo in; cat /proc/1/cgroup"); !strings.HasPrefix(got, "in\n0::/") {
		t.Errorf("exec: %q", got)
	}
	mustContain(t, "top", dk.Must("top", "svc"), "sleep 300")
	dk.Must("pause", "svc")
	if got := dk.Must("inspect", "-f", "{{.State.Status}}", "svc"); got != "paused\n" {
		t.Errorf("pause: %q", got)
	}
	dk.Must("unpause", "svc")
	dk.Must("rm", "-f", "svc", "hog")
}
