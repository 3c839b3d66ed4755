package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/berth-dev/berth/internal/testkit"
)

// inspect decodes `docker inspect` of one object.
func inspect(t *testing.T, d *testkit.Docker, ref string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(d.Must("inspect", ref)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return out[0]
}

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunRmEchoPullsOnce(t *testing.T) {
	e := newImageEnv(t)
	r := e.d.Run(nil, "run", "--rm", e.ref, "echo", "hello")
	if r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("first run: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	mustContain(t, "first run pulls", r.Stderr, "Unable to find image '"+e.ref+"' locally", "Pull complete")
	r = e.d.Run(nil, "run", "--rm", e.ref, "echo", "hello")
	if r.Code != 0 || r.Stdout != "hello\n" || r.Stderr != "" {
		t.Fatalf("second run: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if out := e.d.Must("ps", "-aq"); out != "" {
		t.Fatalf("--rm left containers: %q", out)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	for cmd, want := range map[string]int{"exit 0": 0, "exit 3": 3, "sleep 5 & kill -9 $!; wait $!": 137, "exit 255": 255} {
		if r := e.d.Run(nil, "run", "--rm", e.ref, "sh", "-c", cmd); r.Code != want {
			t.Errorf("%s: exit %d, want %d (%s)", cmd, r.Code, want, r.Stderr)
		}
	}
	r := e.d.Run(nil, "run", "--rm", e.ref, "/no/such/command")
	if r.Code != 127 || !strings.Contains(r.Stderr, "no such file or directory") {
		t.Errorf("missing command: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r = e.d.Run(nil, "run", "--rm", e.reg.Addr+"/nothing:here", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("unknown image: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.d.Must("run", "-d", "--name", "dup", e.ref, "sleep", "30")
	msg := e.d.Fail("run", "--name", "dup", e.ref, "true")
	mustContain(t, "duplicate name", msg, `Conflict. The container name "/dup" is already in use by container`)
	msg = e.d.Fail("rm", "dup")
	mustContain(t, "rm running", msg, "container is running: stop the container before removing or force remove")
	e.d.Must("rm", "-f", "dup")
	msg = e.d.Fail("start", "dup")
	mustContain(t, "start removed", msg, "No such container: dup")
}

func TestRunDetachedLogsExecStopRm(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	id := strings.TrimSpace(e.d.Must("run", "-d", "--name", "ticker", e.ref, "sh", "-c",
		"trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	waitFor(t, "logs", 5*time.Second, func() bool { return strings.Contains(e.d.Must("logs", "ticker"), "tick 3") })

	// logs -f follows until the container stops.
	follow := e.d.Cmd(t.Context(), "logs", "-f", "--tail", "1", "ticker")
	var out strings.Builder
	follow.Stdout = &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	if got := e.d.Must("exec", "ticker", "sh", "-c", "echo in-$HOSTNAME; id -un"); got != "in-"+id[:12]+"\nroot\n" {
		t.Fatalf("exec: %q", got)
	}
	if r := e.d.Run(nil, "exec", "ticker", "sh", "-c", "exit 5"); r.Code != 5 {
		t.Fatalf("exec exit code %d", r.Code)
	}
	if r := e.d.Run(strings.NewReader("piped\n"), "exec", "-i", "ticker", "cat"); r.Stdout != "piped\n" {
		t.Fatalf("exec -i: %q %q", r.Stdout, r.Stderr)
	}
	if got := e.d.Must("exec", "-t", "-u", "user", "-w", "/tmp", "ticker", "sh", "-c", "tty; id -u; pwd"); got != "/dev/pts/0\r\n1000\r\n/tmp\r\n" {
		t.Fatalf("exec -t: %q", got)
	}
	e.d.Must("exec", "-d", "ticker", "sh", "-c", "sleep 0.2; echo detached > /tmp/d")
	waitFor(t, "exec -d", 5*time.Second, func() bool { return e.d.Run(nil, "exec", "ticker", "cat", "/tmp/d").Stdout == "detached\n" })
	mustContain(t, "exec missing", e.d.Run(nil, "exec", "ticker", "nope").Stdout+e.d.Run(nil, "exec", "ticker", "nope").Stderr, "executable file not found")
	if r := e.d.Run(nil, "exec", "ticker", "nope"); r.Code != 126 { // dockerd's code for an exec that cannot start
		t.Fatalf("exec of a missing command: exit %d", r.Code)
	}
	start := time.Now()
	if got := e.d.Must("stop", "ticker"); got != "ticker\n" {
		t.Fatalf("stop printed %q", got)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("stop of a container handling TERM took %v", time.Since(start))
	}
	follow.Wait()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || lines[len(lines)-1] != "bye" {
		t.Fatalf("logs -f: %q", out.String())
	}
	if st := field(inspect(t, e.d, "ticker"), "State", "ExitCode"); st != 0.0 {
		t.Fatalf("exit code after stop: %v", st)
	}
	ts := e.d.Must("logs", "-t", "--tail", "2", "ticker")
	if n := strings.Count(ts, "\n"); n != 2 || !strings.Contains(ts, "Z tick") && !strings.Contains(ts, "Z bye") {
		t.Fatalf("logs -t --tail 2: %q", ts)
	}
	if got := e.d.Must("rm", "ticker"); got != "ticker\n" {
		t.Fatalf("rm printed %q", got)
	}
}

func TestRunEnvWorkdirUser(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	out := e.d.Must("run", "--rm", "-e", "GREETING=hi there", "-w", "/var/www", "-u", "user", e.ref,
		"sh", "-c", `echo "$GREETING|$PWD|$(id -u):$(id -g)|$HOME"; cat index.html`)
	if out != "hi there|/var/www|1000:1000|/home/user\n<h1>berth test page</h1>\n" {
		t.Fatalf("got %q", out)
	}
	if out := e.d.Must("run", "--rm", "-u", "1000:65534", e.ref, "id"); !strings.HasPrefix(out, "uid=1000(user) gid=65534(nogroup)") {
		t.Fatalf("uid:gid: %q", out)
	}
	if out := e.d.Must("run", "--rm", "--entrypoint", "echo", e.ref, "via", "entrypoint"); out != "via entrypoint\n" {
		t.Fatalf("entrypoint: %q", out)
	}
}

func TestPsFormatAndInspect(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	if r := e.d.Run(nil, "run", "--name", "done", e.ref, "sh", "-c", "exit 4"); r.Code != 4 {
		t.Fatalf("run: exit %d", r.Code)
	}
	e.d.Must("run", "-d", "--name", "up", "--label", "app=web", e.ref, "sleep", "60")
	out := e.d.Must("ps", "-a", "--format", "{{.Names}} {{.Status}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "up Up ") || !strings.HasPrefix(lines[1], "done Exited (4) ") || !strings.HasSuffix(lines[1], " ago") {
		t.Fatalf("ps -a --format: %q", out)
	}
	if out := e.d.Must("ps", "--format", "{{.Names}}"); out != "up\n" {
		t.Fatalf("ps (running only): %q", out)
	}
	if out := e.d.Must("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"); out != "done\n" {
		t.Fatalf("ps status filter: %q", out)
	}
	if out := e.d.Must("ps", "--filter", "label=app=web", "-q"); len(strings.TrimSpace(out)) != 12 {
		t.Fatalf("ps label filter: %q", out)
	}
	if out := e.d.Must("ps", "-a", "--filter", "ancestor="+e.ref, "--format", "{{.Names}}"); strings.Count(out, "\n") != 2 {
		t.Fatalf("ps ancestor filter: %q", out)
	}
	table := e.d.Must("ps")
	mustContain(t, "ps table", table, "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", `"sleep 60"`, e.ref)

	in := inspect(t, e.d, "up")
	if field(in, "State", "Status") != "running" || field(in, "State", "Running") != true || field(in, "Name") != "/up" ||
		field(in, "Config", "Image") != e.ref || field(in, "Path") != "sleep" {
		t.Fatalf("inspect: %v", in)
	}
	if pid, _ := field(in, "State", "Pid").(float64); pid <= 0 {
		t.Fatalf("inspect pid %v", field(in, "State", "Pid"))
	}
	if got := e.d.Must("inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "done"); got != "4 exited\n" {
		t.Fatalf("inspect -f: %q", got)
	}
	e.d.Must("rm", "-f", "up")
}

func TestRunInteractiveTTY(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	cmd := e.d.Cmd(t.Context(), "run", "-it", "--name", "itest", e.ref, "sh")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out strings.Builder
	outMu := make(chan struct{}, 1)
	outMu <- struct{}{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			<-outMu
			out.Write(buf[:n])
			outMu <- struct{}{}
			if err != nil {
				return
			}
		}
	}()
	read := func() string { <-outMu; defer func() { outMu <- struct{}{} }(); return out.String() }
	ptmx.Write([]byte("echo answer=$((6*7)); tty; stty size\n"))
	waitFor(t, "shell output", 10*time.Second, func() bool {
		s := read()
		return strings.Contains(s, "answer=42") && strings.Contains(s, "/dev/pts/0") && strings.Contains(s, "33 99")
	})
	ptmx.Write([]byte("exit 3\n"))
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("docker run -it exit %d (%v)\n%s", code, err, read())
	}

	// The detach keys (ctrl-p ctrl-q) leave the container running; attach
	// brings it back.
	cmd = e.d.Cmd(t.Context(), "run", "-it", "--name", "detachable", e.ref, "sh")
	ptmx2, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx2.Close()
	go io.Copy(io.Discard, ptmx2)
	time.Sleep(500 * time.Millisecond)
	ptmx2.Write([]byte("echo before > /tmp/mark\n"))
	time.Sleep(300 * time.Millisecond)
	ptmx2.Write([]byte{0x10, 0x11})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("docker run -it did not return after the detach keys")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("detach: exit %d", code)
	}
	if got := e.d.Must("inspect", "-f", "{{.State.Running}}", "detachable"); got != "true\n" {
		t.Fatalf("after detach the container is not running: %q", got)
	}
	if got := e.d.Must("exec", "detachable", "cat", "/tmp/mark"); got != "before\n" {
		t.Fatalf("typed before detaching: %q", got)
	}
	e.d.Must("rm", "-f", "detachable", "itest")
}

func TestMemoryLimitOOMAndPidsLimit(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	r := e.d.Run(nil, "run", "--name", "hog", "-m", "32m", e.ref, "tail", "/dev/zero")
	if r.Code != 137 {
		t.Fatalf("memory hog: exit %d (%s)", r.Code, r.Stderr)
	}
	if got := e.d.Must("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}", "hog"); got != "true 137 33554432\n" {
		t.Fatalf("inspect hog: %q", got)
	}

	// A fork bomb stays within --pids-limit; PID 1 survives it.
	// A fork bomb: each shell leaves a sleeper and forks two more shells.
	// It must hit the limit (fork fails, the shells say so) and stay within it.
	e.d.Must("run", "-d", "--name", "bomb", "--pids-limit", "32", e.ref, "sh", "-c", `sh -c 'f(){ sleep 60 & f & f & }; f'; exec sleep 60`)
	waitFor(t, "the bomb to hit the limit", 20*time.Second, func() bool {
		return strings.Contains(e.d.Run(nil, "logs", "bomb").Stderr, "can't fork")
	})
	for i := 0; i < 5; i++ {
		top := e.d.Must("top", "bomb")
		if n := strings.Count(top, "\n") - 1; n > 32 || n < 2 {
			t.Fatalf("%d processes under --pids-limit 32:\n%s", n, top)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.d.Must("rm", "-f", "bomb")
}

func TestAgentRestartKeepsContainers(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Run(nil, "run", "--name", "seven", e.ref, "sh", "-c", "echo kept; exit 7")
	e.d.Must("run", "-d", "--name", "running", e.ref, "sleep", "300")
	e.d.Must("run", "-d", "--name", "always", "--restart", "always", e.ref, "sleep", "300")
	e.d.Must("run", "-d", "--name", "unless", "--restart", "unless-stopped", e.ref, "sleep", "300")
	e.d.Must("stop", "-t", "0", "unless")
	pid := strings.TrimSpace(e.d.Must("inspect", "-f", "{{.State.Pid}}", "running"))

	// A crash: the agent's containers die with it (no shim) and are found
	// exited on the next start; restart policies then apply.
	e.agent.Kill()
	e.agent.Start()
	status := func(name string) string {
		return strings.TrimSpace(e.d.Must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name))
	}
	if got := status("seven"); got != "exited 7" {
		t.Fatalf("seven after crash: %q", got)
	}
	if got := status("running"); got != "exited 137" {
		t.Fatalf("running after crash: %q", got)
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		t.Fatalf("process %s of a container survived the agent", pid)
	}
	waitFor(t, "always restarted", 10*time.Second, func() bool { return strings.HasPrefix(status("always"), "running") })
	if got := status("unless"); got != "exited 137" && got != "exited 143" {
		t.Fatalf("manually stopped unless-stopped container after restart: %q", got)
	}
	if got := e.d.Must("logs", "seven"); got != "kept\n" {
		t.Fatalf("logs after restart: %q", got)
	}

	// A graceful stop stops containers; unless-stopped and always come back.
	e.d.Must("start", "unless")
	e.agent.Stop()
	e.agent.Start()
	waitFor(t, "policies on boot", 10*time.Second, func() bool {
		return strings.HasPrefix(status("always"), "running") && strings.HasPrefix(status("unless"), "running")
	})
	if got := status("running"); got != "exited 137" {
		t.Fatalf("no-policy container after graceful restart: %q", got)
	}
	e.d.Must("rm", "-f", "always", "unless")
}

func TestRestartPolicyOnFailure(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", e.ref, "sh", "-c", "echo try; exit 1")
	waitFor(t, "two restarts", 15*time.Second, func() bool {
		return e.d.Must("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky") == "2 exited\n"
	})
	if got := strings.Count(e.d.Must("logs", "flaky"), "try"); got != 3 {
		t.Fatalf("%d runs, want 3", got)
	}
}

func TestPauseKillSignalsTop(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("run", "-d", "--name", "sig", e.ref, "sh", "-c", "trap 'echo got USR1' USR1; while true; do sleep 0.1; done")
	top := e.d.Must("top", "sig")
	mustContain(t, "top", top, "UID", "PID", "PPID", "CMD", "sh -c trap")

	e.d.Must("pause", "sig")
	if got := e.d.Must("ps", "--format", "{{.Status}}", "--filter", "name=sig"); !strings.HasSuffix(strings.TrimSpace(got), "(Paused)") {
		t.Fatalf("ps of paused: %q", got)
	}
	mustContain(t, "exec in paused", e.d.Fail("exec", "sig", "true"), "is paused")
	e.d.Must("unpause", "sig")

	e.d.Must("kill", "-s", "USR1", "sig")
	waitFor(t, "USR1 handled", 5*time.Second, func() bool { return strings.Contains(e.d.Must("logs", "sig"), "got USR1") })
	if got := e.d.Must("inspect", "-f", "{{.State.Running}}", "sig"); got != "true\n" {
		t.Fatalf("USR1 stopped the container: %q", got)
	}
	e.d.Must("kill", "sig")
	waitFor(t, "killed", 5*time.Second, func() bool { return e.d.Must("inspect", "-f", "{{.State.ExitCode}}", "sig") == "137\n" })
	mustContain(t, "kill stopped", e.d.Fail("kill", "sig"), "is not running")

	// docker run proxies the signals it receives to the container.
	cmd := e.d.Cmd(t.Context(), "run", "--rm", e.ref, "sh", "-c", "trap 'echo TERM; exit 9' TERM; echo ready; while true; do sleep 0.1; done")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", 10*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 9 || !strings.Contains(out.String(), "TERM") {
		t.Fatalf("sig-proxy: exit %d, output %q", cmd.ProcessState.ExitCode(), out.String())
	}
}

func TestMalformedRequestsGet400(t *testing.T) {
	e := newImageEnv(t)
	c := e.agent.HTTPClient()
	post := func(body io.Reader) (int, string) {
		resp, err := c.Post("http://berth/v1.47/containers/create", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msg struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&msg)
		return resp.StatusCode, msg.Message
	}
	for _, body := range []string{`{"Image":`, `{"Image": 5}`, `not json`, `{"Image":"x","HostConfig":{"Memory":"1g"}}`} {
		if code, msg := post(strings.NewReader(body)); code != 400 || msg == "" {
			t.Errorf("%q: %d %q", body, code, msg)
		}
	}
	huge := io.MultiReader(strings.NewReader(`{"Image":"busybox","Env":["`), io.LimitReader(zeros{}, 9<<20), strings.NewReader(`"]}`))
	if code, msg := post(huge); code != 400 || !strings.Contains(msg, "too large") && !strings.Contains(msg, "larger than") {
		t.Errorf("oversized body: %d %q", code, msg)
	}
	for path, want := range map[string]int{"/containers/nope/json": 404, "/containers/json?filters=%7Bbad": 400, "/containers/json?filters={\"colour\":{\"red\":true}}": 400} {
		resp, err := c.Get("http://berth" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	// Still serving.
	if out := e.d.Must("run", "--rm", e.ref, "echo", "alive"); out != "alive\n" {
		t.Fatalf("after bad requests: %q", out)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestSecurityDefaultsAndOptions(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	run := func(args ...string) testkit.Result {
		return e.d.Run(nil, append([]string{"run", "--rm"}, args...)...)
	}
	capEff := func(args ...string) string {
		out := run(append(args, e.ref, "sh", "-c", "grep CapEff /proc/self/status")...).Stdout
		return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
	}
	// Docker's default set: chown dac_override fowner fsetid kill setgid setuid
	// setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap.
	if got := capEff(); got != "00000000a80425fb" {
		t.Errorf("default capabilities %s", got)
	}
	if got := capEff("--cap-drop", "ALL"); got != "0000000000000000" {
		t.Errorf("--cap-drop ALL: %s", got)
	}
	if got := capEff("--cap-drop", "ALL", "--cap-add", "NET_ADMIN"); got != "0000000000001000" {
		t.Errorf("--cap-drop ALL --cap-add NET_ADMIN: %s", got)
	}
	if r := run(e.ref, "sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt"); r.Code == 0 {
		t.Error("an unprivileged container mounted a tmpfs")
	}
	if r := run("--privileged", e.ref, "sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt && ls /dev | grep -c ."); r.Code != 0 {
		t.Errorf("--privileged mount: %d %s", r.Code, r.Stderr)
	}
	// Masked and read-only /proc paths; only docker's default devices.
	if out := run(e.ref, "sh", "-c", "cat /proc/timer_list /proc/interrupts | wc -c; echo 1 > /proc/sys/vm/drop_caches && echo wrote; ls /dev").Stdout; !strings.HasPrefix(out, "0\n") || strings.Contains(out, "wrote") || !strings.Contains(out, "null") || strings.Contains(out, "kmsg") {
		t.Errorf("masked /proc and /dev: %q", out)
	}
	if r := run("--read-only", e.ref, "touch", "/x"); r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("--read-only: %d %q", r.Code, r.Stderr)
	}
	// The default bridge: loopback and eth0 (test/engine/network_test.go
	// covers networks in depth).
	if out := run(e.ref, "ls", "/sys/class/net").Stdout; out != "eth0\nlo\n" {
		t.Errorf("default network namespace: %q", out)
	}
	if out := run("--network", "host", e.ref, "ls", "/sys/class/net").Stdout; !strings.Contains(out, "lo") || out == "lo\n" {
		t.Errorf("--network host: %q", out)
	}
	if out := run("--hostname", "boat", e.ref, "sh", "-c", "hostname; cat /etc/hostname").Stdout; out != "boat\nboat\n" {
		t.Errorf("--hostname: %q", out)
	}
	if out := run("--add-host", "db.local:10.1.2.3", e.ref, "grep", "db.local", "/etc/hosts").Stdout; out != "10.1.2.3\tdb.local\n" {
		t.Errorf("--add-host: %q", out)
	}
	if out := run("--cpu-shares", "512", "--cpuset-cpus", "0", e.ref, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus").Stdout; out != "512\n0\n" && out != "20\n0\n" {
		t.Errorf("--cpu-shares 512 --cpuset-cpus 0: %q", out)
	}
	if out := run("--cpus", "0.5", "-m", "64m", e.ref, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max").Stdout; out != "50000\n67108864\n" && out != "50000 100000\n67108864\n" {
		t.Errorf("--cpus 0.5 -m 64m: %q", out)
	}
}

func TestEventsRenameRestartWaitAttach(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	e.d.Run(nil, "run", "--name", "ev", "--label", "team=blue", e.ref, "sh", "-c", "exit 2")
	e.d.Must("rename", "ev", "ev2")
	if got := e.d.Run(nil, "wait", "ev2"); got.Stdout != "2\n" {
		t.Fatalf("wait: %q", got.Stdout)
	}
	e.d.Must("rm", "ev2")
	until := time.Now().Add(time.Second).Format(time.RFC3339Nano)
	out := e.d.Must("events", "--since", since, "--until", until, "--filter", "type=container",
		"--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}} {{.Actor.Attributes.team}}")
	want := []string{"create ev <no value> blue", "attach ev <no value> blue", "start ev <no value> blue",
		"die ev 2 blue", "rename ev2 <no value> blue", "destroy ev2 <no value> blue"}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	e.d.Must("run", "-d", "--name", "rs", e.ref, "sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done")
	e.d.Must("restart", "-t", "5", "rs")
	waitFor(t, "second start", 5*time.Second, func() bool { return strings.Count(e.d.Must("logs", "rs"), "started") == 2 })
	if got := e.d.Must("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "rs"); got != "running 0\n" {
		t.Fatalf("after restart: %q", got)
	}
	// docker attach sees live output and passes the exit code on.
	e.d.Must("run", "-d", "-i", "--name", "att", e.ref, "sh", "-c", "read line; echo got $line; exit 6")
	r := e.d.Run(strings.NewReader("hello\n"), "attach", "att")
	if r.Stdout != "got hello\n" || r.Code != 6 {
		t.Fatalf("attach: exit %d out %q err %q", r.Code, r.Stdout, r.Stderr)
	}
	e.d.Must("rm", "-f", "rs", "att")
}

// TestNoLeaksThroughTheAPI runs containers end to end with the docker CLI
// and checks the agent holds no more descriptors, mounts or cgroups after.
func TestNoLeaksThroughTheAPI(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	cycle := func() {
		e.d.Must("run", "--rm", e.ref, "true")
		id := strings.TrimSpace(e.d.Must("run", "-d", "-t", e.ref, "sleep", "30"))
		e.d.Must("exec", id, "true")
		e.d.Must("logs", id)
		e.d.Must("rm", "-f", id)
	}
	cycle()
	pid := e.agent.Pid()
	count := func() (fds, mounts int) {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(ents), engineMounts(pid, e.agent.Root)
	}
	fds, mounts := count()
	for i := 0; i < 10; i++ {
		cycle()
	}
	time.Sleep(200 * time.Millisecond)
	if f, m := count(); f > fds || m != mounts {
		t.Fatalf("agent: %d fds and %d mounts before, %d and %d after", fds, mounts, f, m)
	}
	if out := e.d.Must("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %q", out)
	}
	ents, _ := os.ReadDir(filepath.Join(e.agent.Root, "runtime"))
	if len(ents) != 0 {
		t.Fatalf("runtime state left: %d", len(ents))
	}
}

// --pid, --ipc and --uts: a namespace of the container's own by default,
// the host's with host, another running container's with container:NAME.
func TestNamespaceModes(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	hostNS := func(kind string) string {
		l, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	inside := func(kind string, args ...string) string {
		a := append([]string{"run", "--rm"}, args...)
		return strings.TrimSpace(e.d.Must(append(a, e.ref, "readlink", "/proc/self/ns/"+kind)...))
	}
	for _, kind := range []string{"pid", "ipc", "uts"} {
		if got := inside(kind); got == hostNS(kind) {
			t.Errorf("default: the host's %s namespace %s", kind, got)
		}
		if got := inside(kind, "--"+kind, "host"); got != hostNS(kind) {
			t.Errorf("--%s host: %s, the host's is %s", kind, got, hostNS(kind))
		}
	}
	// With the host's PID namespace the container sees the host's processes.
	if out := e.d.Must("run", "--rm", "--pid", "host", e.ref, "cat", "/proc/1/comm"); out == "sh\n" || out == "cat\n" {
		t.Errorf("--pid host: PID 1 is %q", out)
	}
	host, _ := os.Hostname()
	if got := strings.TrimSpace(e.d.Must("run", "--rm", "--uts", "host", e.ref, "hostname")); got != host {
		t.Errorf("--uts host: hostname %q, want %q", got, host)
	}
	e.d.Fail("run", "--rm", "--uts", "host", "-h", "other", e.ref, "true")

	e.d.Must("run", "-d", "--name", "nsowner", e.ref, "sleep", "60")
	defer e.d.Run(nil, "rm", "-f", "nsowner")
	for _, kind := range []string{"pid", "ipc"} {
		want := strings.TrimSpace(e.d.Must("exec", "nsowner", "readlink", "/proc/self/ns/"+kind))
		if got := inside(kind, "--"+kind, "container:nsowner"); got != want {
			t.Errorf("--%s container:nsowner: %s, want %s", kind, got, want)
		}
	}
	// Sharing its PID namespace, a container sees the other's sleep.
	if out := e.d.Must("run", "--rm", "--pid", "container:nsowner", e.ref, "ps", "-o", "comm"); !strings.Contains(out, "sleep") {
		t.Errorf("--pid container:nsowner: ps shows %q", out)
	}
	e.d.Must("stop", "-t", "0", "nsowner")
	if r := e.d.Run(nil, "run", "--rm", "--pid", "container:nsowner", e.ref, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "not running") {
		t.Errorf("joining a stopped container's PID namespace: %+v", r)
	}
	if r := e.d.Run(nil, "run", "--rm", "--pid", "container:nobody-here", e.ref, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "nobody-here") {
		t.Errorf("joining a missing container's PID namespace: %+v", r)
	}
}
