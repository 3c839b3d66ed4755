package deb

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A clean Debian 12 root for install tests: debootstrap (minbase) plus the
// package's dependencies from Debian's mirror, built once and kept under
// ~/.cache/berth/debroot/KEY (the key covers the suite, the dependencies
// and apt's sources), then used read-only as the lower layer of an overlay,
// so each test starts from the same pristine root in no time.

const suite = "bookworm"

// debianSources are the Debian entries of the host's apt sources, one-line
// format: what the root's apt uses, and the mirror debootstrap starts from.
func debianSources(t *testing.T) (lines []string, mirror string) {
	var files []string
	if _, err := os.Stat("/etc/apt/sources.list"); err == nil {
		files = append(files, "/etc/apt/sources.list")
	}
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append(files, more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(f, ".sources"):
			for _, stanza := range strings.Split(string(b), "\n\n") {
				kv := map[string]string{}
				for _, l := range strings.Split(stanza, "\n") {
					if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
						kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
					}
				}
				if kv["Types"] != "deb" || kv["Enabled"] == "no" {
					continue
				}
				for _, uri := range strings.Fields(kv["URIs"]) {
					for _, s := range strings.Fields(kv["Suites"]) {
						lines = append(lines, fmt.Sprintf("deb %s %s %s", uri, s, kv["Components"]))
					}
				}
			}
		case strings.HasSuffix(f, ".list"):
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "deb ") {
					lines = append(lines, l)
				}
			}
		}
	}
	var keep []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || strings.HasPrefix(f[1], "[") || !strings.HasPrefix(f[2], suite) {
			continue // another distribution, or options we do not carry over
		}
		keep = append(keep, l)
		if mirror == "" && f[2] == suite {
			mirror = f[1]
		}
	}
	if mirror == "" {
		t.Skipf("no Debian %s mirror among apt's sources", suite)
	}
	return keep, mirror
}

// cleanRoot returns a directory holding a fresh Debian root with deps
// installed, as an overlay over the cached root; it is unmounted and
// removed when t ends.
func cleanRoot(t *testing.T, deps []string) string {
	base := cachedRoot(t, deps)
	dir, err := os.MkdirTemp("/var/tmp", "berth-debroot-")
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged")
	for _, d := range []string{"upper", "work", "merged"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("overlay over the Debian root: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			unix.Unmount(merged, unix.MNT_DETACH)
		}
		os.RemoveAll(dir)
	})
	return merged
}

// cachedRoot builds the root once (debootstrap, then apt-get install of
// deps) and returns it.
func cachedRoot(t *testing.T, deps []string) string {
	for _, tool := range []string{"debootstrap", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: debootstrap)", tool)
		}
	}
	sources, mirror := debianSources(t)
	sorted := append([]string(nil), deps...)
	sort.Strings(sorted)
	h := sha256.Sum256([]byte(suite + "\n" + strings.Join(sorted, "\n") + "\n" + strings.Join(sources, "\n")))
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "berth", "debroot", hex.EncodeToString(h[:8]))
	if _, err := os.Stat(filepath.Join(root, "etc", "debian_version")); err == nil {
		return root
	}
	t.Logf("building a clean Debian %s root with %v into %s (once: a few minutes)", suite, deps, root)
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, tail(out))
		}
	}
	run("debootstrap", "--variant=minbase", suite, tmp, mirror)
	os.Remove(filepath.Join(tmp, "etc", "apt", "sources.list"))
	if err := os.WriteFile(filepath.Join(tmp, "etc", "apt", "sources.list.d", "debian.list"), []byte(strings.Join(sources, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	os.WriteFile(filepath.Join(tmp, "etc", "resolv.conf"), resolv, 0o644)
	proc := filepath.Join(tmp, "proc")
	if err := unix.Mount("proc", proc, "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if unix.Unmount(proc, 0) != nil {
				unix.Unmount(proc, unix.MNT_DETACH)
			}
		}()
		run("chroot", tmp, "apt-get", "update", "-qq")
		run("chroot", append([]string{tmp, "apt-get", "install", "-y", "-qq", "--no-install-recommends"}, deps...)...)
		run("chroot", tmp, "apt-get", "clean")
	}()
	os.WriteFile(filepath.Join(tmp, "etc", "resolv.conf"), nil, 0o644)
	if err := os.Rename(tmp, root); err != nil {
		if _, serr := os.Stat(filepath.Join(root, "etc", "debian_version")); serr == nil {
			return root // built meanwhile by another test run
		}
		t.Fatal(err)
	}
	return root
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// fileList lists every path under root (but the kernel's and scratch
// filesystems), with its type and mode: what "nothing left behind" means.
func fileList(t *testing.T, root string) map[string]string {
	skip := map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/run": true, "/tmp": true}
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if skip[rel] {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = info.Mode().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
