package vz

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/drivertest"
)

// machine is a small VM from the guest built on Linux (make cross:
// build/guest/out/ARCH, copied to this Mac).
func machine(t *testing.T) *driver.Machine {
	dir := filepath.Join(testkit.RepoRoot(), "build", "guest", "out", runtime.GOARCH)
	m := &driver.Machine{Name: "vzt", CPUs: 2, MemoryMiB: 1024, DiskGiB: 2, StateDir: t.TempDir(),
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img")}
	for _, f := range []string{m.Kernel, m.Initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs the guest image (make cross on Linux, copied here): %v", err)
		}
	}
	return m
}

// TestConformance runs the driver suite. The test binary needs the
// virtualization entitlement: codesign -s - --entitlements
// build/darwin/entitlements.plist, then run it (go test -exec can do it).
func TestConformance(t *testing.T) {
	m := machine(t)
	drivertest.Run(t, drivertest.Options{
		New: func(t *testing.T) (driver.Driver, *driver.Machine) { return New(nil), m },
		// The VM runs in this process: a crash is the framework stopping
		// it without being asked.
		Kill: func(t *testing.T, d driver.Driver) {
			vd := d.(*Driver)
			vd.mu.Lock()
			vm := vd.vm
			vd.mu.Unlock()
			if vm == nil {
				t.Fatal("no VM to kill")
			}
			if err := vm.Stop(); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestSuspendResume: a suspended machine comes back from its saved state
// (Apple silicon, macOS 14) and its engine answers again.
func TestSuspendResume(t *testing.T) {
	m := machine(t)
	d := New(nil)
	s, ok := any(d).(driver.Suspender)
	if !ok {
		t.Skip("saved states need Apple silicon")
	}
	t.Cleanup(func() { d.Stop(context.Background(), true) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Status(ctx); st.State != driver.Stopped || st.Exit != "" {
		t.Fatalf("after suspend: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(m.StateDir, saveFile)); err != nil {
		t.Fatalf("no saved state: %v", err)
	}
	t0 := time.Now()
	if err := d.Start(ctx, m); err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed in %v", time.Since(t0).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(m.StateDir, saveFile)); !os.IsNotExist(err) {
		t.Fatal("the saved state outlived the resume")
	}
	if err := driver.PingEngine(ctx, d); err != nil {
		t.Fatal(err)
	}
}
