package engine_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
