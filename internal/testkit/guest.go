package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// GuestImage returns the VM kernel (vmlinux where there is one) and initramfs built by `make guest`
// (build/guest/out/ARCH, or $BERTH_GUEST_DIR), skipping t if they or QEMU
// are missing. `make test` builds them first.
func GuestImage(t T) (kernel, initrd string) {
	t.Helper()
	qemu := map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[runtime.GOARCH]
	if _, err := exec.LookPath(qemu); err != nil {
		t.Skipf("needs %s (Debian: qemu-system-x86 / qemu-system-arm)", qemu)
	}
	dir := os.Getenv("BERTH_GUEST_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "build", "guest", "out", runtime.GOARCH)
	}
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs the guest image (run `make guest`): %v", err)
		}
	}
	// The uncompressed kernel (x86), as hostd boots it.
	if v := filepath.Join(dir, "vmlinux"); fileExists(v) {
		kernel = v
	}
	return kernel, initrd
}
