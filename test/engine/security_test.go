package engine_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/connauth"
	"github.com/berth-dev/berth/internal/testkit"
)

// sysprobeSrc calls one system call and prints "ok" or its errno's text:
// busybox has no applet for add_key, keyctl or io_uring_setup.
const sysprobeSrc = `package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const keySpecProcessKeyring = ^uintptr(1) // -2

func main() {
	var e syscall.Errno
	switch os.Args[1] {
	case "getpid":
		_, _, e = syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
	case "add_key":
		typ, _ := syscall.BytePtrFromString("user")
		desc, _ := syscall.BytePtrFromString("berth")
		payload := []byte("x")
		_, _, e = syscall.Syscall6(syscall.SYS_ADD_KEY, uintptr(unsafe.Pointer(typ)), uintptr(unsafe.Pointer(desc)),
			uintptr(unsafe.Pointer(&payload[0])), 1, keySpecProcessKeyring, 0)
	case "keyctl":
		_, _, e = syscall.Syscall(syscall.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, keySpecProcessKeyring, 1)
	case "io_uring_setup":
		var params [120]byte
		_, _, e = syscall.Syscall(425, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	default:
		fmt.Println("unknown probe")
		os.Exit(2)
	}
	if e != 0 {
		fmt.Println(e.Error())
		return
	}
	fmt.Println("ok")
}
`

// securityImage is busybox plus /bin/sysprobe, built here with Go.
func securityImage(t *testing.T) v1.Image {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "sysprobe.go")
	if err := os.WriteFile(src, []byte(sysprobeSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sysprobe")
	cmd := exec.Command(goBin, "build", "-o", out, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sysprobe: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entries := []testkit.TarEntry{{Name: "bin/sysprobe", Mode: 0o755, Body: bin}, {Name: "mnt/", Type: tar.TypeDir}}
	if runtime.GOARCH == "amd64" {
		// The same probe as an i386 program: 32-bit x86 system calls
		// must pass the default filter, as with dockerd.
		cmd := exec.Command(goBin, "build", "-o", out+"386", src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=386", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build sysprobe for 386: %v\n%s", err, b)
		}
		bin386, err := os.ReadFile(out + "386")
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, testkit.TarEntry{Name: "bin/sysprobe386", Mode: 0o755, Body: bin386})
	}
	probe := testkit.LayerTar(entries)
	return testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}}, testkit.LayerTar(testkit.BusyboxEntries(t)), probe)
}

func newSecurityEnv(t *testing.T) imageEnv {
	t.Helper()
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/secprobe:latest"
	testkit.Push(t, ref, securityImage(t))
	e := imageEnv{reg: reg, agent: a, d: testkit.NewDocker(t, a.Host), ref: ref}
	e.d.Must("pull", ref)
	return e
}

const eperm = "operation not permitted"

// TestSeccompDefaultProfile: a default container runs under dockerd's
// profile (Seccomp: 2; keyrings, io_uring and mounts in a user namespace
// refused); seccomp=unconfined and --privileged run without it; a profile
// sent as JSON is applied; docker info reports the builtin profile.
func TestSeccompDefaultProfile(t *testing.T) {
	e := newSecurityEnv(t)
	if got := e.d.Must("info", "--format", "{{json .SecurityOptions}}"); !strings.Contains(got, "name=seccomp,profile=builtin") {
		t.Fatalf("docker info security options: %s", got)
	}
	status := func(args ...string) string {
		out := e.d.Must(append(append([]string{"run", "--rm"}, args...), e.ref, "grep", "^Seccomp:", "/proc/self/status")...)
		return strings.Join(strings.Fields(out), " ")
	}
	if got := status(); got != "Seccomp: 2" {
		t.Fatalf("default container: %q, want Seccomp: 2", got)
	}
	if got := status("--security-opt", "seccomp=unconfined"); got != "Seccomp: 0" {
		t.Fatalf("seccomp=unconfined: %q", got)
	}
	if got := status("--privileged"); got != "Seccomp: 0" {
		t.Fatalf("--privileged: %q", got)
	}
	probe := func(name string, args ...string) string {
		out := e.d.Must(append(append([]string{"run", "--rm"}, args...), e.ref, "sysprobe", name)...)
		return strings.TrimSpace(out)
	}
	if runtime.GOARCH == "amd64" {
		// A 32-bit x86 program runs under the filter; its add_key is
		// refused as the 64-bit one is.
		if out := strings.TrimSpace(e.d.Must("run", "--rm", e.ref, "sysprobe386", "getpid")); out != "ok" {
			t.Errorf("a 32-bit program's getpid: %q", out)
		}
		if out := strings.TrimSpace(e.d.Must("run", "--rm", e.ref, "sysprobe386", "add_key")); out != eperm {
			t.Errorf("a 32-bit program's add_key: %q", out)
		}
	}
	for _, call := range []string{"add_key", "keyctl", "io_uring_setup"} {
		if got := probe(call); got != eperm {
			t.Errorf("%s in a default container: %q, want %q", call, got, eperm)
		}
		if got := probe(call, "--security-opt", "seccomp=unconfined"); got != "ok" {
			t.Errorf("%s with seccomp=unconfined: %q, want ok", call, got)
		}
	}
	// The classic escape path: a user namespace where the container is root.
	userns := []string{e.ref, "unshare", "-U", "-r", "-m", "sh", "-c", "mount -t tmpfs none /mnt && echo mounted"}
	r := e.d.Run(nil, append([]string{"run", "--rm"}, userns...)...)
	if r.Code == 0 || strings.Contains(r.Stdout, "mounted") || !strings.Contains(strings.ToLower(r.Stderr), eperm) {
		t.Errorf("unshare -U -r + mount in a default container: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = e.d.Run(nil, append([]string{"run", "--rm", "--security-opt", "seccomp=unconfined"}, userns...)...)
	if r.Code != 0 || r.Stdout != "mounted\n" {
		t.Errorf("unshare -U -r + mount with seccomp=unconfined: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}

	// A profile of our own, as the CLI sends it: the file's content.
	profile := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	r = e.d.Run(nil, "run", "--rm", "--security-opt", "seccomp="+profile, e.ref, "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/x")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Seccomp:\t2") || !strings.Contains(strings.ToLower(r.Stderr), eperm) {
		t.Errorf("custom profile: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if got := probe("add_key", "--security-opt", "seccomp="+profile); got != "ok" {
		t.Errorf("add_key under a profile that allows it: %q", got)
	}
}

// TestSecurityOptionsHonoured: each honoured option has its effect in the
// container.
func TestSecurityOptionsHonoured(t *testing.T) {
	e := newSecurityEnv(t)
	run := func(args ...string) testkit.Result {
		return e.d.Run(nil, append([]string{"run", "--rm"}, args...)...)
	}
	field := func(args ...string) string {
		r := run(append(args, e.ref, "grep", "^NoNewPrivs:", "/proc/self/status")...)
		return strings.Join(strings.Fields(r.Stdout), " ")
	}
	if got := field(); got != "NoNewPrivs: 0" {
		t.Errorf("default: %q", got)
	}
	for _, opt := range []string{"no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"} {
		if got := field("--security-opt", opt); got != "NoNewPrivs: 1" {
			t.Errorf("%s: %q", opt, got)
		}
	}

	if r := run("--oom-score-adj", "432", e.ref, "cat", "/proc/self/oom_score_adj"); r.Stdout != "432\n" {
		t.Errorf("--oom-score-adj 432: %q %q", r.Stdout, r.Stderr)
	}

	// --device with permissions: opened for reading, not for writing
	// (/dev/loop-control: no default rule allows it).
	opens := "exec 3</dev/lc && echo read; exec 4>/dev/lc && echo write"
	r := run("--device", "/dev/loop-control:/dev/lc:r", e.ref, "sh", "-c", opens)
	if r.Stdout != "read\n" || r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), eperm) {
		t.Errorf("--device /dev/loop-control:/dev/lc:r: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := run("--device", "/dev/loop-control:/dev/lc", e.ref, "sh", "-c", opens); r.Stdout != "read\nwrite\n" {
		t.Errorf("--device with rwm: %q %q", r.Stdout, r.Stderr)
	}
	if r := run(e.ref, "sh", "-c", "test -e /dev/lc || test -e /dev/loop-control || echo none"); r.Stdout != "none\n" {
		t.Errorf("without --device: %q %q", r.Stdout, r.Stderr)
	}

	// --device-cgroup-rule: char 1:12 is no device the default rules
	// allow; the kernel has no driver for it (ENXIO) once the cgroup lets
	// the open through.
	open := []string{e.ref, "sh", "-c", "mknod /tmp/d c 1 12 && cat /tmp/d"}
	r = run(open...)
	if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), eperm) {
		t.Errorf("open of c 1:12 without a rule: exit %d, %q", r.Code, r.Stderr)
	}
	r = run(append([]string{"--device-cgroup-rule", "c 1:12 rwm"}, open...)...)
	if r.Code == 0 || strings.Contains(strings.ToLower(r.Stderr), eperm) || !strings.Contains(strings.ToLower(r.Stderr), "no such device") {
		t.Errorf("open of c 1:12 with a rule: exit %d, %q", r.Code, r.Stderr)
	}

	// Accepted because they ask for what is: no LSM, the default runtime,
	// the engine's user namespace.
	for _, args := range [][]string{
		{"--security-opt", "apparmor=unconfined"}, {"--security-opt", "label=disable"},
		{"--runtime", "runc"}, {"--userns", "host"},
	} {
		if r := run(append(args, e.ref, "true")...); r.Code != 0 {
			t.Errorf("%v: exit %d, %s", args, r.Code, r.Stderr)
		}
	}
}

// TestInitReapsAndForwards: `--init` runs the command under docker-init,
// which reaps orphans and forwards signals.
func TestInitReapsAndForwards(t *testing.T) {
	e := newSecurityEnv(t)
	out := e.d.Must("run", "--rm", "--init", e.ref, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "/sbin/docker-init -- sh -c") || lines[1] == "1" {
		t.Fatalf("--init: PID 1 and the command's PID: %q", out)
	}
	// An orphan (its parent exits at once) is reparented to PID 1 and,
	// once it exits, must not stay a zombie. Without --init, PID 1 here is
	// sleep, which reaps nothing: the check's control.
	zombies := func(args ...string) string {
		id := strings.TrimSpace(e.d.Must(append(append([]string{"run", "-d"}, args...), e.ref, "sh", "-c", "sh -c 'sleep 0.2 & exit 0'; exec sleep 30")...))
		defer e.d.Run(nil, "rm", "-f", id)
		time.Sleep(time.Second)
		return strings.TrimSpace(e.d.Run(nil, "exec", id, "sh", "-c", "ps -o stat | grep -c ^Z").Stdout)
	}
	if got := zombies("--init"); got != "0" {
		t.Errorf("--init left %s zombies", got)
	}
	if got := zombies(); got != "1" {
		t.Errorf("without --init: %s zombies, want 1 (the check's control)", got)
	}
	// Exit statuses pass through, 128+N for a signal.
	if r := e.d.Run(nil, "run", "--rm", "--init", e.ref, "sh", "-c", "exit 3"); r.Code != 3 {
		t.Errorf("--init exit 3: %d", r.Code)
	}
	if r := e.d.Run(nil, "run", "--rm", "--init", e.ref, "nosuchcommand"); r.Code != 127 {
		t.Errorf("--init missing command: exit %d, %s", r.Code, r.Stderr)
	}
	// docker stop's SIGTERM reaches the command (not PID 1 of the container).
	e.d.Must("run", "-d", "--init", "--name", "trap", e.ref, "sh", "-c", `trap "echo got TERM; exit 7" TERM; while true; do sleep 0.1; done`)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	e.d.Must("stop", "-t", "10", "trap")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %v: SIGTERM was not forwarded", took)
	}
	if got := e.d.Must("inspect", "-f", "{{.State.ExitCode}} {{.HostConfig.Init}}", "trap"); got != "7 true\n" {
		t.Errorf("after stop: %q", got)
	}
	if got := e.d.Must("logs", "trap"); got != "got TERM\n" {
		t.Errorf("logs: %q", got)
	}
}

// TestCreateSecurityOptions is the API's table: each option is honoured
// (201) or refused with a 400 that names it.
func TestCreateSecurityOptions(t *testing.T) {
	e := newSecurityEnv(t)
	c := e.agent.HTTPClient()
	for _, tc := range []struct {
		name string
		host map[string]any
		want string // "" for 201
	}{
		{"no-new-privileges", map[string]any{"SecurityOpt": []string{"no-new-privileges"}}, ""},
		{"no-new-privileges=bad", map[string]any{"SecurityOpt": []string{"no-new-privileges=maybe"}}, "no-new-privileges=maybe"},
		{"seccomp=unconfined", map[string]any{"SecurityOpt": []string{"seccomp=unconfined"}}, ""},
		{"seccomp=builtin", map[string]any{"SecurityOpt": []string{"seccomp=builtin"}}, ""},
		{"seccomp=json", map[string]any{"SecurityOpt": []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`}}, ""},
		{"seccomp=garbage", map[string]any{"SecurityOpt": []string{"seccomp=/no/such/profile"}}, "seccomp"},
		{"seccomp=bad json", map[string]any{"SecurityOpt": []string{`seccomp={"defaultAction":"SCMP_ACT_NOPE"}`}}, "seccomp"},
		{"seccomp notify", map[string]any{"SecurityOpt": []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x.sock"}`}}, "user notification"},
		{"apparmor=unconfined", map[string]any{"SecurityOpt": []string{"apparmor=unconfined"}}, ""},
		{"apparmor=profile", map[string]any{"SecurityOpt": []string{"apparmor=docker-default"}}, "apparmor=docker-default"},
		{"label=disable", map[string]any{"SecurityOpt": []string{"label=disable"}}, ""},
		{"label=type", map[string]any{"SecurityOpt": []string{"label=type:svirt_t"}}, "label=type:svirt_t"},
		{"unknown opt", map[string]any{"SecurityOpt": []string{"frobnicate=1"}}, "frobnicate=1"},
		{"device", map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"}}}, ""},
		{"device missing", map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/berth-nothing"}}}, "--device /dev/berth-nothing"},
		{"device perms", map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/zero", "CgroupPermissions": "rwx"}}}, "--device /dev/zero"},
		{"device-cgroup-rule", map[string]any{"DeviceCgroupRules": []string{"c 1:3 rwm", "b *:* m"}}, ""},
		{"device-cgroup-rule bad", map[string]any{"DeviceCgroupRules": []string{"c 1-3 rwm"}}, "--device-cgroup-rule"},
		{"oom-score-adj", map[string]any{"OomScoreAdj": 500}, ""},
		{"oom-score-adj range", map[string]any{"OomScoreAdj": 1001}, "oom score adj"},
		{"userns host", map[string]any{"UsernsMode": "host"}, ""},
		{"userns remap", map[string]any{"UsernsMode": "private"}, "--userns=private"},
		{"gpus", map[string]any{"DeviceRequests": []map[string]any{{"Count": -1, "Capabilities": [][]string{{"gpu"}}}}}, "--gpus"},
		{"runtime runc", map[string]any{"Runtime": "runc"}, ""},
		{"runtime other", map[string]any{"Runtime": "nvidia"}, "--runtime nvidia"},
		{"init", map[string]any{"Init": true}, ""},
		{"isolation", map[string]any{"Isolation": "hyperv"}, "--isolation=hyperv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"Image": e.ref, "Cmd": []string{"true"}, "HostConfig": tc.host})
			resp, err := c.Post("http://berth/containers/create", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case tc.want == "" && resp.StatusCode != http.StatusCreated:
				t.Fatalf("%d %s, want 201", resp.StatusCode, b)
			case tc.want != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tc.want)):
				t.Fatalf("%d %s, want 400 naming %q", resp.StatusCode, b, tc.want)
			}
		})
	}
}

// freeTCPPort is a loopback port free now.
func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// rawHTTP sends one request on a fresh connection to addr, after pre
// (the connection token, or nothing), and returns the status line, or ""
// if the engine closed the connection without answering.
func rawHTTP(t *testing.T, addr, pre, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, pre+req)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestAPIRefusesWebPages: JSON bodies must be declared as JSON (a page can
// post text/plain anywhere); a TCP listener serves only requests naming
// itself and carrying no Origin (DNS rebinding, cross-site requests).
func TestAPIRefusesWebPages(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	addr := freeTCPPort(t)
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--host", "tcp://" + addr}})
	ref := reg.Addr + "/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	d := testkit.NewDocker(t, "tcp://"+addr) // the CLI names the listener as Host
	d.Must("pull", ref)

	c := a.HTTPClient()
	body := `{"Image":"` + ref + `","Cmd":["true"]}`
	for ct, want := range map[string]int{"text/plain": 400, "": 400, "application/x-www-form-urlencoded": 400, "application/json": 201} {
		req, _ := http.NewRequest(http.MethodPost, "http://berth/containers/create", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 400 && !strings.Contains(string(b), "must be 'application/json'")) {
			t.Errorf("create with Content-Type %q: %d %s, want %d", ct, resp.StatusCode, b, want)
		}
	}
	if n := strings.Count(d.Must("ps", "-aq"), "\n"); n != 1 {
		t.Errorf("%d containers created, want only the application/json one", n)
	}

	_, port, _ := net.SplitHostPort(addr)
	create := func(host, extra string) string {
		return "POST /containers/create HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "Content-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	}
	for _, tc := range []struct{ req, want string }{
		{create("evil.example:"+port, ""), "403"},
		{create("localhost.evil.example:"+port, ""), "403"},
		{create(addr, "Origin: http://evil.example:"+port+"\r\n"), "403"},
		{create(addr, "Origin: null\r\n"), "403"},
		{create(addr, ""), "201"},
		{create("localhost:"+port, ""), "201"},
	} {
		if got := rawHTTP(t, addr, "", tc.req); !strings.Contains(got, " "+tc.want+" ") {
			t.Errorf("%q: %q, want %s", strings.SplitN(tc.req, "\r\nContent-Type", 2)[0], got, tc.want)
		}
	}
	if n := strings.Count(d.Must("ps", "-aq"), "\n"); n != 3 {
		t.Errorf("%d containers, want 3: refused requests must create nothing", n)
	}
}

// TestTCPListenerToken: with --auth-token-stdin (the WSL driver's port,
// reachable by every local user), a connection is served only after it
// presents the token, which appears in no argv, environment or log.
func TestTCPListenerToken(t *testing.T) {
	token, err := connauth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeTCPPort(t)
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--host", "tcp://" + addr, "--auth-token-stdin"}, Stdin: token + "\n"})
	ping := "GET /_ping HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-test\r\nConnection: close\r\n\r\n" // longer than a token line
	if got := rawHTTP(t, addr, "", ping); got != "" {
		t.Errorf("without the token: %q, want the connection closed unanswered", got)
	}
	other, _ := connauth.NewToken()
	if got := rawHTTP(t, addr, other+"\n", ping); got != "" {
		t.Errorf("with another token: %q", got)
	}
	if got := rawHTTP(t, addr, token+"\n", ping); got != "HTTP/1.1 200 OK" {
		t.Errorf("with the token: %q", got)
	}
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", a.Pid(), f))
		if err != nil || strings.Contains(string(b), token) {
			t.Errorf("/proc/PID/%s holds the token (or is unreadable: %v)", f, err)
		}
	}
	if strings.Contains(a.LogTail(1<<20), token) {
		t.Error("the token is in the agent's log")
	}
	// The unix socket needs no token.
	if resp, err := a.HTTPClient().Get("http://berth/_ping"); err != nil || resp.StatusCode != 200 {
		t.Errorf("unix socket: %v", err)
	}
}

// TestOneEnginePerRoot: a second engine on a live engine's state root exits
// at once, naming the first, and the first's containers and network are
// untouched.
func TestOneEnginePerRoot(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("run", "-d", "--name", "keep", e.ref, "sleep", "60")
	dir := t.TempDir()
	cmd := exec.Command(testkit.Binary(t, "berth-agent"), "--root", e.agent.Root, "--host", "unix://"+filepath.Join(dir, "second.sock"),
		"--cgroup-parent", "/berth-test-second")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second engine on the same root started: %s", out)
	}
	if want := fmt.Sprintf("in use by PID %d", e.agent.Pid()); !strings.Contains(string(out), want) {
		t.Fatalf("second engine: %v: %s (want %q)", err, out, want)
	}
	if got := e.d.Must("inspect", "-f", "{{.State.Running}}", "keep"); got != "true\n" {
		t.Fatalf("the first engine's container after the second's attempt: running=%s", got)
	}
	if got := e.d.Must("exec", "keep", "echo", "alive"); got != "alive\n" {
		t.Fatalf("exec: %q", got)
	}
	if got := e.d.Must("run", "--rm", e.ref, "sh", "-c", "ip -4 addr show eth0 | grep -c inet"); got != "1\n" {
		t.Fatalf("a new container's network: %q", got)
	}
	// Once the first engine stops, the root is free again.
	e.d.Must("rm", "-f", "keep")
	e.agent.Stop()
	e.agent.Start()
	e.d.Must("ps", "-a")
}

// TestDefaultLogBound: the engine's --log-opt (hostd passes the Settings'
// container log size) bounds a container's json-file log unless the
// container sets its own.
func TestDefaultLogBound(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--log-opt", "max-size=8k", "--log-opt", "max-file=2"}})
	ref := reg.Addr + "/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	d := testkit.NewDocker(t, a.Host)
	d.Must("pull", ref)
	spam := "i=0; while [ $i -lt 3000 ]; do echo line $i of a chatty container; i=$((i+1)); done"
	d.Must("run", "--name", "chatty", ref, "sh", "-c", spam)
	d.Must("run", "--name", "own", "--log-opt", "max-size=64k", ref, "sh", "-c", spam)
	if got := d.Must("inspect", "-f", "{{json .HostConfig.LogConfig}}", "chatty"); !strings.Contains(got, `"max-size":"8k"`) || !strings.Contains(got, `"max-file":"2"`) {
		t.Errorf("chatty's log config: %s", got)
	}
	if got := d.Must("inspect", "-f", "{{json .HostConfig.LogConfig}}", "own"); !strings.Contains(got, `"max-size":"64k"`) {
		t.Errorf("own's log config: %s", got)
	}
	size := func(name string) int64 {
		id := strings.TrimSpace(d.Must("inspect", "-f", "{{.Id}}", name))
		files, _ := filepath.Glob(filepath.Join(a.Root, "containers", id, id+"-json.log*"))
		var n int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	if n := size("chatty"); n == 0 || n > 2*8<<10+512 {
		t.Errorf("chatty's logs take %d bytes, want at most two files of 8 KiB", n)
	}
	if n := size("own"); n <= 2*8<<10+512 {
		t.Errorf("own's logs take only %d bytes: its max-size was not kept", n)
	}
	if got := d.Must("logs", "--tail", "1", "chatty"); got != "line 2999 of a chatty container\n" {
		t.Errorf("logs --tail 1: %q", got)
	}
	mustContain(t, "a bad default", string(mustFail(t, exec.Command(testkit.Binary(t, "berth-agent"), "--root", t.TempDir(), "--log-opt", "max-size=lots"))), "max-size")
}

func mustFail(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%v succeeded: %s", cmd.Args, out)
	}
	return out
}
