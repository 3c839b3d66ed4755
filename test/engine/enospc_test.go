package engine_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testkit"
)

// TestFullDiskFailsClearlyAndRecovers: with the engine's root on a small
// tmpfs filled to the last byte, run, pull and build fail with an error that
// says so, no record is left half-written, and once space is freed all
// three work again on the same engine.
func TestFullDiskFailsClearlyAndRecovers(t *testing.T) {
	testkit.RequireRoot(t)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=128m,mode=0711"); err != nil {
		t.Skipf("needs a tmpfs mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	root := filepath.Join(mnt, "root")

	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{Root: root})
	d := testkit.NewDocker(t, a.Host)
	ref, other := reg.Addr+"/busybox:latest", reg.Addr+"/other:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	testkit.Push(t, other, securityImage(t))
	d.Must("pull", ref)
	d.Must("run", "--name", "before", ref, "true")
	ctx := buildDir(t, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN echo built > /built\n"})

	// Fill the disk.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := len(chunk) / 2; n > 0; n /= 2 { // the last pages too
		f.Write(chunk[:n])
	}
	f.Close()

	const full = "no space left on device"
	for _, args := range [][]string{
		{"run", "--name", "during", ref, "true"},
		{"pull", other},
		{"build", "-t", "built", ctx},
	} {
		r := d.Run(nil, args...)
		t.Logf("docker %s on a full disk: exit %d: %s", args[0], r.Code, lineWith(r.Stderr+r.Stdout, full))
		if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, full) {
			t.Errorf("docker %s on a full disk: exit %d, want an error saying %q:\n%s%s", args[0], r.Code, full, r.Stdout, r.Stderr)
		}
	}
	// The engine still answers, and what it had is intact.
	if got := d.Must("ps", "-a", "--format", "{{.Names}}"); got != "before\n" {
		t.Errorf("containers on a full disk: %q", got)
	}
	checkRecords(t, root)

	os.Remove(filler)
	if got := d.Must("run", "--rm", ref, "echo", "recovered"); got != "recovered\n" {
		t.Errorf("run after freeing space: %q", got)
	}
	d.Must("pull", other)
	d.Must("build", "-t", "built", ctx)
	if got := d.Must("run", "--rm", "built", "cat", "/built"); got != "built\n" {
		t.Errorf("built image: %q", got)
	}
	d.Must("run", "--name", "during", ref, "true")
	checkRecords(t, root)

	// And after a restart, everything loads.
	a.Stop()
	a.Start()
	if got := d.Must("ps", "-a", "--format", "{{.Names}}"); !strings.Contains(got, "before") || !strings.Contains(got, "during") {
		t.Errorf("containers after a restart: %q", got)
	}
	if !strings.Contains(a.LogTail(1<<20), "engine ready") || strings.Contains(a.LogTail(1<<20), "skipping unreadable container") {
		t.Errorf("restart log:\n%s", a.LogTail(4000))
	}
}

// checkRecords fails if a container record under root does not parse or an
// atomic write's temp file was left behind.
func checkRecords(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(root, "containers"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		switch {
		case strings.Contains(de.Name(), ".tmp"):
			t.Errorf("temp file left: %s", p)
		case de.Name() == "config.json":
			b, err := os.ReadFile(p)
			var rec map[string]any
			if err != nil || json.Unmarshal(b, &rec) != nil || rec["ID"] == nil {
				t.Errorf("half-written record %s: %v %.80q", p, err, b)
			}
		}
		return nil
	})
	for _, f := range []string{"image/repositories.json"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil || !json.Valid(b) {
			t.Errorf("%s: %v %.80q", f, err, b)
		}
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
