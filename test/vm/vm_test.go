// Package vm_test is the end-to-end suite of Berth's machine: the real
// berth CLI starts the real host agent, which boots the real VM (QEMU,
// software emulation here), and the stock docker CLI works through the
// forwarded socket. A native-driver run of the same lifecycle needs no VM.
package vm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/internal/testkit"
)

// berth runs the real berth CLI for one BERTH_HOME.
type berth struct {
	t      *testing.T
	bin    string
	env    []string
	paths  config.Paths
	dcfg   string // DOCKER_CONFIG: the CLI's contexts, isolated
	docker *testkit.Docker
}

func newBerth(t *testing.T, s config.Settings) *berth {
	testkit.RequireRoot(t)
	bin := testkit.Binary(t, "berth")
	env := []string{"BERTH_AGENT=" + testkit.Binary(t, "berth-agent")}
	if s.Driver == "qemu" {
		kernel, _ := testkit.GuestImage(t)
		env = append(env, "BERTH_GUEST_DIR="+filepath.Dir(kernel))
	}
	// A short home: unix socket paths are limited to 108 bytes.
	home, err := os.MkdirTemp("", "berth-vm-")
	if err != nil {
		t.Fatal(err)
	}
	b := &berth{t: t, bin: bin, env: env, paths: config.Paths{Home: home}, dcfg: t.TempDir()}
	if err := config.Save(b.paths, s, config.Limits{}); err != nil {
		t.Fatal(err)
	}
	b.docker = testkit.NewDocker(t, b.paths.DockerHost())
	t.Cleanup(func() {
		if t.Failed() {
			for _, src := range []string{"hostd", "console"} {
				r := b.run(nil, "logs", "--source", src, "-n", "60")
				t.Logf("berth logs --source %s:\n%s%s", src, r.out, r.err)
			}
		}
		b.run(nil, "stop", "-f")
		os.RemoveAll(home)
	})
	return b
}

type result struct {
	out, err string
	code     int
}

func (b *berth) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(append(os.Environ(), b.env...), "BERTH_HOME="+b.paths.Home, "DOCKER_CONFIG="+b.dcfg)
	return cmd
}

func (b *berth) run(stdin io.Reader, args ...string) result {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := b.cmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (b *berth) must(args ...string) string {
	b.t.Helper()
	r := b.run(nil, args...)
	if r.code != 0 {
		b.t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func (b *berth) status() hostapi.Status {
	b.t.Helper()
	var st hostapi.Status
	r := b.run(nil, "status", "--json")
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		b.t.Fatalf("status --json: %v: %s", err, r.out)
	}
	return st
}

// start runs `berth start` and checks what it promises: the socket answers
// when it returns, and it prints the DOCKER_HOST to use.
func (b *berth) start() time.Duration {
	b.t.Helper()
	t0 := time.Now()
	out := b.must("start")
	took := time.Since(t0)
	if want := "export DOCKER_HOST=" + b.paths.DockerHost(); !strings.Contains(out, want) {
		b.t.Fatalf("berth start printed %q, want %q", out, want)
	}
	if got := strings.TrimSpace(b.docker.Must("version", "--format", "{{.Server.Os}}")); got != "linux" {
		b.t.Fatalf("docker version after berth start: %q", got)
	}
	return took
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pushBusybox starts a registry on the host with the busybox test image.
func pushBusybox(t *testing.T) (*testkit.Registry, string) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	testkit.Push(t, reg.Addr+"/busybox:1", testkit.BusyboxImage(t))
	return reg, reg.Addr
}

func TestNativeLifecycle(t *testing.T) {
	_, regAddr := pushBusybox(t)
	s := config.Defaults()
	s.Driver, s.SharedFolders = "native", nil
	b := newBerth(t, s)
	b.start()
	st := b.status()
	if st.State != hostapi.Running || st.Driver != "native" || st.EngineVersion == "" {
		t.Fatalf("status: %+v", st)
	}
	ref := regAddr + "/busybox:1"
	b.docker.Must("pull", "-q", ref)
	if out := b.docker.Must("run", "--rm", ref, "echo", "native"); out != "native\n" {
		t.Fatalf("run: %q", out)
	}
	// No machine to open a shell in: said plainly.
	if r := b.run(nil, "shell", "--", "true"); r.code == 0 || !strings.Contains(r.err, "native driver") {
		t.Fatalf("shell on native: %+v", r)
	}
	if out := b.must("logs", "--source", "agent", "-n", "50"); !strings.Contains(out, "engine ready") {
		t.Fatalf("agent log: %q", out)
	}
	if out := b.must("logs", "-n", "50"); !strings.Contains(out, "hostd serving") {
		t.Fatalf("hostd log: %q", out)
	}
	// A second `berth hostd` for the same home refuses to run.
	if r := b.run(nil, "hostd"); r.code == 0 || !strings.Contains(r.err, "another berth hostd") {
		t.Fatalf("second hostd: %+v", r)
	}
	b.must("stop")
	if r := b.run(nil, "status"); r.code != 1 || !strings.Contains(r.out, "stopped") {
		t.Fatalf("status after stop: %+v", r)
	}
	// Stopped and started again: the image is still there.
	b.start()
	if out := b.docker.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
		t.Fatalf("image lost across stop/start: %q", out)
	}
	if r := b.run(strings.NewReader("n\n"), "delete"); r.code == 0 {
		t.Fatal("delete went ahead without a yes")
	}
	b.must("delete", "-f")
	if _, err := os.Stat(b.paths.MachineDir()); !os.IsNotExist(err) {
		t.Fatalf("machine dir after delete: %v", err)
	}
	if r := b.run(nil, "status"); r.code != 1 {
		t.Fatalf("status after delete: %+v", r)
	}
}

func TestVMEndToEnd(t *testing.T) {
	testkit.GuestImage(t)
	reg, regAddr := pushBusybox(t)
	_, port, _ := net.SplitHostPort(regAddr)
	// The host, as the machine and its containers name it (QEMU's user
	// network shows the host's loopback as the gateway, 10.0.2.2).
	guestReg := "host.docker.internal:" + port
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	s := config.Defaults()
	s.Driver, s.CPUs, s.MemoryMiB, s.DiskGiB = "qemu", 2, 1024, 8
	s.SharedFolders, s.InsecureRegistries = []string{home}, []string{guestReg}
	b := newBerth(t, s)
	d := b.docker

	took := b.start()
	t.Logf("berth start → engine answering: %v", took.Round(time.Millisecond))
	for _, sock := range []string{b.paths.DockerSocket(), b.paths.HostdSocket()} {
		if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", sock, fi, err)
		}
	}
	st := b.status()
	if st.State != hostapi.Running || st.Driver != "qemu" || st.Accel == "" || st.Kernel == "" || st.MachinePID == 0 || st.CPUs != 2 {
		t.Fatalf("status: %+v", st)
	}
	if got := d.Must("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"); !strings.HasPrefix(got, "linux/") {
		t.Fatalf("version: %q", got)
	}
	// The docker context points at the socket.
	dd := testkit.NewDocker(t, "")
	dd.ConfigDir = b.dcfg
	ctxName := strings.TrimSpace(b.must("status", "--json"))
	var sj struct {
		Context string `json:"dockerContext"`
	}
	json.Unmarshal([]byte(ctxName), &sj)
	if got := strings.TrimSpace(dd.Must("--context", sj.Context, "version", "--format", "{{.Server.Os}}")); got != "linux" {
		t.Fatalf("through the docker context %q: %q", sj.Context, got)
	}

	// The engine acceptance scenarios, through the VM (a representative
	// set; test/engine has them all against the native engine).
	ref := guestReg + "/busybox:1"
	t.Run("pull from the host's registry", func(t *testing.T) {
		out := d.Must("pull", ref)
		if !strings.Contains(out, "Pull complete") && !strings.Contains(out, "Downloaded newer image") {
			t.Fatalf("pull: %s", out)
		}
	})
	t.Run("a container reaches the host as host.docker.internal", func(t *testing.T) {
		out := d.Must("run", "--rm", ref, "wget", "-q", "-O", "-", "http://"+guestReg+"/v2/busybox/tags/list")
		if !strings.Contains(out, `"busybox"`) {
			t.Fatalf("the host's registry from a container: %q", out)
		}
	})
	t.Run("bundled hello image", func(t *testing.T) {
		waitFor(t, "berth/hello preloaded", time.Minute, func() bool {
			return strings.Contains(d.Must("images", "--format", "{{.Repository}}"), "berth/hello")
		})
		if out := d.Must("run", "--rm", "berth/hello"); !strings.Contains(out, "Hello from Berth") {
			t.Fatalf("hello: %q", out)
		}
	})
	t.Run("confinement and --init in the guest", func(t *testing.T) {
		// The guest kernel applies dockerd's seccomp profile; --init mounts
		// the guest's agent as /sbin/docker-init.
		if out := d.Must("run", "--rm", ref, "grep", "^Seccomp:", "/proc/self/status"); strings.Join(strings.Fields(out), " ") != "Seccomp: 2" {
			t.Fatalf("default container: %q", out)
		}
		if r := d.Run(nil, "run", "--rm", ref, "unshare", "-U", "-r", "-m", "true"); r.Code == 0 {
			t.Fatalf("unshare -U -r in a default container succeeded")
		}
		if out := d.Must("run", "--rm", "--init", ref, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 0"); !strings.HasPrefix(out, "/sbin/docker-init -- sh -c") {
			t.Fatalf("--init: PID 1 is %q", out)
		}
		if got := d.Must("info", "--format", "{{json .SecurityOptions}}"); !strings.Contains(got, "profile=builtin") {
			t.Fatalf("info: %s", got)
		}
	})
	t.Run("run, exit codes, errors", func(t *testing.T) {
		if out := d.Must("run", "--rm", ref, "echo", "hello from the vm"); out != "hello from the vm\n" {
			t.Fatalf("echo: %q", out)
		}
		if r := d.Run(nil, "run", "--rm", ref, "sh", "-c", "exit 3"); r.Code != 3 {
			t.Fatalf("exit 3: %+v", r)
		}
		if r := d.Run(nil, "run", "--rm", ref, "/no/such/cmd"); r.Code != 127 {
			t.Fatalf("missing command: %+v", r)
		}
		if r := d.Run(nil, "run", "--rm", guestReg+"/nope:1"); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
			t.Fatalf("unknown image: %+v", r)
		}
	})
	t.Run("stdin through a hijacked stream", func(t *testing.T) {
		r := d.Run(strings.NewReader("line one\nline two\n"), "run", "--rm", "-i", ref, "sh", "-c", "wc -l; exit 5")
		if r.Code != 5 || strings.TrimSpace(r.Stdout) != "2" {
			t.Fatalf("run -i: %+v", r)
		}
	})
	t.Run("run -it under a terminal", func(t *testing.T) {
		cmd := d.Cmd(t.Context(), "run", "-it", "--rm", ref, "sh")
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 99})
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		ptmx.Write([]byte("echo answer=$((6*7)); stty size; exit 3\n"))
		var out bytes.Buffer
		io.Copy(&out, ptmx)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(out.String(), "answer=42") || !strings.Contains(out.String(), "33 99") {
			t.Fatalf("run -it: exit %d, output %q", code, out.String())
		}
	})
	t.Run("detached: logs, exec, stop, rm", func(t *testing.T) {
		id := strings.TrimSpace(d.Must("run", "-d", "--name", "ticker", ref, "sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 0.2; done"))
		waitFor(t, "logs", 30*time.Second, func() bool { return strings.Contains(d.Must("logs", "ticker"), "started") })
		if out := d.Must("exec", "ticker", "sh", "-c", "echo in-$HOSTNAME"); out != "in-"+id[:12]+"\n" {
			t.Fatalf("exec: %q", out)
		}
		d.Must("stop", "-t", "5", "ticker")
		if got := strings.TrimSpace(d.Must("inspect", "--format", "{{.State.ExitCode}}", "ticker")); got != "0" {
			t.Fatalf("exit code after stop: %s", got)
		}
		d.Must("rm", "ticker")
	})
	t.Run("memory limit: OOM kill", func(t *testing.T) {
		r := d.Run(nil, "run", "--name", "hog", "-m", "32m", ref, "tail", "/dev/zero")
		defer d.Run(nil, "rm", "-f", "hog")
		if r.Code != 137 {
			t.Fatalf("exit %d, want 137: %s", r.Code, r.Stderr)
		}
		if got := strings.TrimSpace(d.Must("inspect", "--format", "{{.State.OOMKilled}}", "hog")); got != "true" {
			t.Fatalf("OOMKilled %s", got)
		}
	})
	t.Run("push and save/load", func(t *testing.T) {
		d.Must("tag", ref, guestReg+"/copy:2")
		d.Must("push", guestReg+"/copy:2")
		if _, err := http.Get("http://" + reg.Addr + "/v2/copy/manifests/2"); err != nil {
			t.Fatal(err)
		}
		tarPath := filepath.Join(t.TempDir(), "img.tar")
		d.Must("save", "-o", tarPath, ref)
		d.Must("rmi", guestReg+"/copy:2")
		d.Must("rmi", ref)
		if out := d.Must("load", "-i", tarPath); !strings.Contains(out, ref) {
			t.Fatalf("load: %q", out)
		}
	})
	t.Run("docker build with BuildKit and classic", func(t *testing.T) {
		// The docker CLI with buildx, through hostd's forwarded socket: the
		// h2c upgrades of /grpc and /session pass unchanged, the builder
		// starts in the guest (from the system disk) on first use.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "helloworld"), []byte("#!/bin/sh\necho Hello from a VM build\n"), 0o755)
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nCOPY helloworld /usr/local/bin/\nRUN chmod +x /usr/local/bin/helloworld\nCMD [\"helloworld\"]\n"), 0o644)
		r := d.Run(nil, "build", "--progress=plain", "-t", "vm-built:bk", dir)
		if r.Code != 0 || !strings.Contains(r.Stderr, "using docker driver") || !strings.Contains(r.Stderr, "naming to docker.io/library/vm-built:bk done") {
			t.Fatalf("BuildKit build through the VM: exit %d\n%s", r.Code, r.Stderr)
		}
		if out := d.Must("run", "--rm", "vm-built:bk"); out != "Hello from a VM build\n" {
			t.Fatalf("the built image: %q", out)
		}
		classic := *d
		classic.Env = append(append([]string(nil), d.Env...), "DOCKER_BUILDKIT=0")
		if out := classic.Must("build", "-t", "vm-built:classic", dir); !strings.Contains(out, "Successfully tagged vm-built:classic") {
			t.Fatalf("classic build through the VM: %s", out)
		}
	})
	t.Run("published port answers on the host", func(t *testing.T) {
		r := d.Run(nil, "run", "-d", "--name", "web", "-p", "18080:80", ref, "httpd", "-f", "-p", "80", "-h", "/var/www")
		defer d.Run(nil, "rm", "-f", "web")
		if r.Code != 0 {
			t.Fatalf("run -p: %+v", r)
		}
		ports := d.Must("inspect", "--format", "{{json .NetworkSettings.Ports}}", "web")
		if !strings.Contains(ports, "18080") {
			t.Fatalf("NetworkSettings.Ports = %s", ports)
		}
		var body string
		waitFor(t, "http://127.0.0.1:18080/", 30*time.Second, func() bool {
			resp, err := http.Get("http://127.0.0.1:18080/")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == 200
		})
		if !strings.Contains(body, "berth test page") {
			t.Fatalf("page %q", body)
		}
		waitFor(t, "the port in berth status", 10*time.Second, func() bool {
			for _, p := range b.status().Ports {
				if p.HostPort == 18080 && p.HostIP == "127.0.0.1" && p.Proto == "tcp" {
					return true
				}
			}
			return false
		})
		d.Must("rm", "-f", "web")
		waitFor(t, "the forward to close", 10*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", "127.0.0.1:18080", time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	})
	shared, err := os.MkdirTemp(home, "berth-vm-share-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shared)
	os.WriteFile(filepath.Join(shared, "from-host.txt"), []byte("written on the host\n"), 0o644)
	t.Run("home folder shared with the VM", func(t *testing.T) {
		// The guest sees the host's file at the same path…
		if out := b.must("shell", "--", "cat", filepath.Join(shared, "from-host.txt")); out != "written on the host\n" {
			t.Fatalf("in the VM: %q", out)
		}
		// …and so does a container, through -v.
		r := d.Run(nil, "run", "--rm", "-v", shared+":/src", ref, "sh", "-c", "cat /src/from-host.txt; echo back > /src/from-container.txt")
		if r.Code != 0 || r.Stdout != "written on the host\n" {
			t.Fatalf("run -v: %+v", r)
		}
		if b, err := os.ReadFile(filepath.Join(shared, "from-container.txt")); err != nil || string(b) != "back\n" {
			t.Fatalf("written by the container: %q %v", b, err)
		}
	})
	t.Run("berth shell", func(t *testing.T) {
		r := b.run(strings.NewReader("echo $((40+2)); id -u; exit 4\n"), "shell")
		if r.code != 4 || !strings.Contains(r.out, "42\n0\n") {
			t.Fatalf("shell: %+v", r)
		}
		if out := b.must("shell", "--", "sh", "-c", "mount | grep ' /data '"); !strings.Contains(out, "ext4") {
			t.Fatalf("data disk: %q", out)
		}
		if out := b.must("shell", "--", "grep", "cgroup2", "/proc/self/mountinfo"); !strings.Contains(out, "nsdelegate,favordynmods") {
			t.Fatalf("cgroup2 mount: %q", out)
		}
	})
	t.Run("logs", func(t *testing.T) {
		if out := b.must("logs", "--source", "agent", "-n", "100"); !strings.Contains(out, "engine ready") {
			t.Fatalf("agent log: %q", out)
		}
		if out := b.must("logs", "--source", "console"); !strings.Contains(out, "Linux version") && !strings.Contains(out, "engine ready") {
			t.Fatalf("console log: %q", out)
		}
	})

	d.Must("volume", "create", "keep")
	d.Must("run", "--rm", "-v", "keep:/v", ref, "sh", "-c", "echo kept > /v/f")
	d.Must("run", "--name", "stays", ref, "true")

	// Stopped and started: images, containers and volumes are kept.
	b.must("stop")
	if _, err := os.Stat(b.paths.DockerSocket()); err == nil {
		t.Error("docker socket left after berth stop")
	}
	b.start()
	if out := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
		t.Fatalf("image lost across stop/start: %q", out)
	}
	if out := d.Must("ps", "-a", "--format", "{{.Names}}"); !strings.Contains(out, "stays") {
		t.Fatalf("container lost across stop/start: %q", out)
	}
	if out := d.Must("run", "--rm", "-v", "keep:/v", ref, "cat", "/v/f"); out != "kept\n" {
		t.Fatalf("volume across stop/start: %q", out)
	}

	// QEMU killed from outside: hostd boots a new VM, the socket works again.
	pid := b.status().MachinePID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hostd to notice the crash", 30*time.Second, func() bool { return b.status().Restarts == 1 })
	if got := strings.TrimSpace(d.Must("version", "--format", "{{.Server.Os}}")); got != "linux" {
		t.Fatalf("after the crash: %q", got)
	}
	st = b.status()
	if st.State != hostapi.Running || st.MachinePID == pid || !strings.Contains(st.Error, "killed") {
		t.Fatalf("after the crash: %+v", st)
	}
	if out := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
		t.Fatalf("image lost in the crash: %q", out)
	}
	b.must("stop")
}

// TestDiskGrows checks `berth start --disk`: the machine's disk and its
// filesystem grow, the data stays.
func TestDiskGrows(t *testing.T) {
	testkit.GuestImage(t)
	s := config.Defaults()
	s.Driver, s.CPUs, s.MemoryMiB, s.DiskGiB, s.SharedFolders = "qemu", 1, 1024, 8, nil
	b := newBerth(t, s)
	b.start()
	size := func() int64 {
		out := b.must("shell", "--", "sh", "-c", "df -k /data | tail -1")
		f := strings.Fields(out)
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("df: %q", out)
		}
		return n << 10
	}
	before := size()
	b.must("shell", "--", "sh", "-c", "echo kept > /data/marker")
	b.must("stop")
	b.must("start", "--disk", "12")
	after := size()
	if after < before+3<<30 {
		t.Fatalf("filesystem %d → %d bytes after --disk 12", before, after)
	}
	if out := b.must("shell", "--", "cat", "/data/marker"); out != "kept\n" {
		t.Fatalf("data after growing: %q", out)
	}
	if s, _ := config.Load(b.paths); s.DiskGiB != 12 {
		t.Fatalf("--disk not saved: %d", s.DiskGiB)
	}
}
