package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// dockerd and podman are measured next to Berth when installed (Debian's
// docker.io and podman), each with its own state, sockets and cgroups, and
// driven by the same docker CLI. dockerd keeps its default bridge network,
// on a bridge of its own so it does not collide with anything on the host.
func init() {
	extraEngines = append(extraEngines, startDockerd, startPodman)
}

func benchID() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func startDockerd(b *Bench) *Engine {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil
	}
	id := benchID()
	dir, err := os.MkdirTemp("", "bench-dockerd-")
	if err != nil {
		return nil
	}
	bridge := "bdk" + id
	if out, err := exec.Command("sh", "-c", fmt.Sprintf(
		"ip link add name %[1]s type bridge && ip addr add 172.29.%[2]d.1/24 dev %[1]s && ip link set %[1]s up",
		bridge, 16+int(id[0])%200)).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "dockerd: bridge: %v %s\n", err, out)
		os.RemoveAll(dir)
		return nil
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", bridge,
		"--cgroup-parent", "/bench-dockerd-"+id, "--insecure-registry", b.Registry, "--log-level", "error")
	logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		exec.Command("ip", "link", "del", bridge).Run()
		os.RemoveAll(dir)
		return nil
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(cmd, 20*time.Second)
		exec.Command("ip", "link", "del", bridge).Run()
		testkit.UnmountUnder(dir)
		os.RemoveAll(dir)
		testkit.RemoveCgroup("/bench-dockerd-" + id)
	}
	e := &Engine{Name: "dockerd", Host: "unix://" + sock, Docker: testkit.NewDocker(b.T, "unix://"+sock),
		Pids: func() []int { return processTree(cmd.Process.Pid) }, Stop: stop}
	if !answers(e, 30*time.Second) {
		fmt.Fprintf(os.Stderr, "dockerd did not come up; see %s\n", filepath.Join(dir, "dockerd.log"))
		stop()
		return nil
	}
	b.T.Cleanup(stop)
	return e
}

func startPodman(b *Bench) *Engine {
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "bench-podman-")
	if err != nil {
		return nil
	}
	// The shared test registry is plain HTTP.
	regConf := filepath.Join(dir, "registries.conf")
	os.WriteFile(regConf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", b.Registry)), 0o644)
	sock := filepath.Join(dir, "podman.sock")
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--tmpdir", filepath.Join(dir, "tmp"),
		"system", "service", "--time=0", "unix://"+sock)
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+regConf)
	logf, _ := os.Create(filepath.Join(dir, "podman.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(cmd, 20*time.Second)
		testkit.KillUnder(dir) // conmon processes outlive the service (--exit-delay)
		testkit.UnmountUnder(dir)
		os.RemoveAll(dir)
	}
	e := &Engine{Name: "podman", Host: "unix://" + sock, Docker: testkit.NewDocker(b.T, "unix://"+sock),
		Pids: func() []int { return processTree(cmd.Process.Pid) }, Stop: stop}
	if !answers(e, 30*time.Second) {
		fmt.Fprintf(os.Stderr, "podman did not come up; see %s\n", filepath.Join(dir, "podman.log"))
		stop()
		return nil
	}
	b.T.Cleanup(stop)
	// Rootful podman raises RLIMIT_NOFILE and RLIMIT_NPROC to 1M in every
	// container unless told otherwise; without CAP_SYS_RESOURCE (as on these
	// machines) containers then fail to start (with nproc even at the
	// current hard limit), so each run is given limits that work here.
	var nofile syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	runFlags[e.Name] = []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Max), "--ulimit", "nproc=4096:4096"}
	return e
}

// runFlags are extra `docker run` flags an engine needs on this machine.
var runFlags = map[string][]string{}

// answers waits until the engine serves `docker version`.
func answers(e *Engine, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := exec.Command(testkit.DockerCLI, "-H", e.Host, "version").Run(); err == nil {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func waitExit(cmd *exec.Cmd, limit time.Duration) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
	}
}

// processTree is pid and its descendants (dockerd's containerd, podman's
// helpers, WebKit's processes), for RSS and CPU figures.
func processTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
