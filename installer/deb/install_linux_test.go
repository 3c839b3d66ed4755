package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// binaries finds what make build and make desktop made.
func binaries(t *testing.T) (bin, guest string) {
	bin = os.Getenv("BERTH_BIN")
	if bin == "" {
		bin = filepath.Join(testkit.RepoRoot(), "bin")
	}
	guest = filepath.Join(testkit.RepoRoot(), "build", "guest", "out", runtime.GOARCH)
	for _, f := range []string{filepath.Join(bin, "berth"), filepath.Join(bin, "berth-desktop"), filepath.Join(guest, "initrd.img")} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (make build desktop guest)", f)
		}
	}
	return bin, guest
}

// TestInstallPurge installs the package into a clean Debian 12 root (its
// dependencies from Debian's mirror, nothing else), runs berth there, checks
// that berth-desktop finds every library it links, and purges it: the
// root's files are then exactly what they were before.
func TestInstallPurge(t *testing.T) {
	testkit.RequireRoot(t)
	bin, guest := binaries(t)
	deb, err := Build(Options{Version: "v1.2.3-4-gabc1234", Arch: runtime.GOARCH, Bin: bin, Guest: guest,
		Icon: filepath.Join(testkit.RepoRoot(), "build", "appicon.png"), Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(deb)
	t.Logf("%s: %d MiB", filepath.Base(deb), fi.Size()>>20)

	root := cleanRoot(t, Depends(runtime.GOARCH))
	chroot := func(args ...string) (string, error) {
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := chroot(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	before := fileList(t, root)
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "berth.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	must("dpkg", "-i", "/tmp/berth.deb")
	os.Remove(filepath.Join(root, "tmp", "berth.deb"))

	if v := must("dpkg-query", "-W", "-f", "${Version} ${Status}", "berth"); v != "1.2.3+4.gabc1234 install ok installed" {
		t.Errorf("dpkg-query: %q", v)
	}
	out := must("berth", "version", "--client")
	if !strings.Contains(out, "Client:") || !strings.Contains(out, "linux/"+runtime.GOARCH) {
		t.Errorf("berth version --client:\n%s", out)
	}
	if out := must("ldd", "/usr/bin/berth-desktop"); strings.Contains(out, "not found") {
		t.Errorf("berth-desktop misses libraries the package does not depend on:\n%s", out)
	}
	files := must("dpkg", "-L", "berth")
	for _, want := range []string{"/usr/bin/berth", "/usr/bin/berth-desktop", "/usr/share/applications/berth.desktop",
		"/usr/share/icons/hicolor/256x256/apps/berth.png", "/usr/share/berth/guest/" + runtime.GOARCH + "/initrd.img",
		"/usr/share/berth/guest/" + runtime.GOARCH + "/vmlinuz", "/usr/share/berth/guest/" + runtime.GOARCH + "/manifest.json"} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("dpkg -L berth lacks %s", want)
		}
	}
	// hostd finds the guest image where the package puts it (next to the
	// binary: ../share/berth/guest/ARCH).
	if _, err := os.Stat(filepath.Join(root, "usr/bin/../share/berth/guest", runtime.GOARCH, "vmlinuz")); err != nil {
		t.Error(err)
	}

	must("dpkg", "--purge", "berth")
	after := fileList(t, root)
	var added, removed, changed []string
	for p, m := range after {
		if bm, ok := before[p]; !ok {
			added = append(added, p)
		} else if bm != m {
			changed = append(changed, p+" "+bm+" → "+m)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	if len(added)+len(removed)+len(changed) > 0 {
		t.Errorf("purge left the root different: added %v, removed %v, changed %v", added, removed, changed)
	}
	t.Logf("install and purge: %d files before and after", len(before))
}
