//go:build linux

package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dockerd is a real dockerd (Debian's docker.io) started for a test, the
// reference Berth's Engine API is compared with. It has its own socket,
// data and exec roots, bridge, cgroup parent and address pool, so it
// touches nothing of the host's or of other engines under test.
type Dockerd struct {
	Socket string // the API socket
	Host   string // DOCKER_HOST value: unix://…
	Dir    string // everything it writes lives below this
	Log    string // its log file
	cmd    *exec.Cmd
}

// DockerdOptions configure StartDockerd.
type DockerdOptions struct {
	InsecureRegistries []string
}

// StartDockerd starts /usr/sbin/dockerd and waits until it answers; it is
// stopped and its state removed at cleanup. It returns an error (for the
// caller to skip with) when dockerd is not installed or cannot start here.
func StartDockerd(t T, opts DockerdOptions) (*Dockerd, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dockerd needs root")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("dockerd is not installed (Debian's docker.io): %w", err)
	}
	var idb [3]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	dir, err := os.MkdirTemp("", "dockerd-")
	if err != nil {
		return nil, err
	}
	// A bridge of its own, in a range Berth's default pools (172.17-31/16,
	// 192.168/16) do not use, so both engines can run side by side.
	bridge := "bdk" + id
	if out, err := exec.Command("sh", "-c", fmt.Sprintf(
		"ip link add name %[1]s type bridge && ip addr add 10.%[2]d.%[3]d.1/24 dev %[1]s && ip link set %[1]s up",
		bridge, 200+int(idb[0])%50, idb[1])).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dockerd's bridge: %v: %s", err, out)
	}
	d := &Dockerd{Socket: filepath.Join(dir, "docker.sock"), Dir: dir, Log: filepath.Join(dir, "dockerd.log")}
	d.Host = "unix://" + d.Socket
	cgroupParent := "/dockerd-test-" + id
	args := []string{"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", d.Host, "--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", bridge,
		"--cgroup-parent", cgroupParent, "--log-level", "warn",
		// User networks from a pool of its own (10.250-254.x.0/24).
		"--default-address-pool", fmt.Sprintf("base=10.%d.0.0/16,size=24", 250+int(idb[2])%5),
	}
	for _, r := range opts.InsecureRegistries {
		args = append(args, "--insecure-registry", r)
	}
	d.cmd = exec.Command(bin, args...)
	logf, err := os.Create(d.Log)
	if err != nil {
		return nil, err
	}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cleanup := func() {
		if d.cmd.Process != nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			waitProcess(d.cmd, 20*time.Second)
		}
		logf.Close()
		exec.Command("ip", "link", "del", bridge).Run()
		KillUnder(dir) // containerd-shims it left, if any
		UnmountUnder(dir)
		os.RemoveAll(dir)
		RemoveCgroup(cgroupParent)
	}
	if err := d.cmd.Start(); err != nil {
		cleanup()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { _, err := d.cmd.Process.Wait(); exited <- err }()
	if err := waitPing(d.Socket, 60*time.Second, exited); err != nil {
		log, _ := os.ReadFile(d.Log)
		cleanup()
		return nil, fmt.Errorf("dockerd did not come up: %v\n%s", err, tail(log, 4000))
	}
	t.Cleanup(cleanup)
	return d, nil
}

// HTTPClient talks to dockerd's socket directly.
func (d *Dockerd) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.Socket)
	}}}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func waitProcess(cmd *exec.Cmd, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
}

// UnmountUnder unmounts whatever an engine left mounted below dir, deepest
// first, so its state directory can be deleted.
func UnmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// KillUnder kills the processes whose command line names dir: helpers an
// engine started for this run (its state dir is unique to the run) that
// outlived it.
func KillUnder(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), dir+"/") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
