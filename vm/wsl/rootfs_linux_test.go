package wsl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// TestRootfs checks the distro make guest writes for WSL: unpacked (with
// tar, as wsl --import does) it is self-contained: the driver's scripts run
// in it with its own busybox, and the static berth-agent starts there; the
// agent the driver copies out of it on upgrades is the same file.
func TestRootfs(t *testing.T) {
	testkit.RequireRoot(t)
	tarball := filepath.Join(testkit.RepoRoot(), "build", "guest", "out", "amd64", "wsl-rootfs.tar.gz")
	if _, err := os.Stat(tarball); err != nil {
		t.Skipf("needs the guest image (make guest): %v", err)
	}
	root := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", tarball, "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(root, "etc", "wsl.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"systemd = false", "[interop]\nenabled = false", "appendWindowsPath = false", "default = root"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("wsl.conf lacks %q:\n%s", want, conf)
		}
	}
	out, err := exec.Command("chroot", root, busybox, "sh", "-c", "echo $$ > /tmp/pid && "+agentPath+" --version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "berth-agent ") {
		t.Fatalf("berth-agent in the distro: %v: %s", err, out)
	}
	if fi, err := os.Lstat(filepath.Join(root, "bin", "sh")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("/bin/sh (the root user's shell) is not busybox's link: %v", err)
	}

	copied := filepath.Join(t.TempDir(), "berth-agent")
	if err := extractAgent(tarball, copied); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(copied)
	b, _ := os.ReadFile(filepath.Join(root, strings.TrimPrefix(agentPath, "/")))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("extracted agent (%d bytes) differs from the distro's (%d bytes)", len(a), len(b))
	}
	if fi, _ := os.Stat(copied); fi.Mode().Perm()&0o100 == 0 {
		t.Error("extracted agent is not executable")
	}
}
