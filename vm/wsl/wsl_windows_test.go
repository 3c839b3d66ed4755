package wsl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/drivertest"
)

// TestConformance runs the driver suite on a Windows machine with WSL 2 and
// the guest built on Linux (make guest: build/guest/out/amd64).
func TestConformance(t *testing.T) {
	if _, err := exec.LookPath("wsl.exe"); err != nil {
		t.Skip("needs WSL (wsl --install --no-distribution)")
	}
	rootfs := filepath.Join(testkit.RepoRoot(), "build", "guest", "out", "amd64", "wsl-rootfs.tar.gz")
	if _, err := os.Stat(rootfs); err != nil {
		t.Skipf("needs the guest built on Linux (make guest): %v", err)
	}
	name := "wt" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	t.Cleanup(func() { exec.Command("wsl.exe", "--unregister", "berth-"+name).Run() })
	drivertest.Run(t, drivertest.Options{
		New: func(t *testing.T) (driver.Driver, *driver.Machine) {
			return New(nil), &driver.Machine{Name: name, StateDir: t.TempDir(), Rootfs: rootfs}
		},
	})
}
