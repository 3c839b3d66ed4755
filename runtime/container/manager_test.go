//go:build linux

package container

import (
	"context"
	"strings"
	"testing"
	"time"

	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/errdefs"
)

type ctrConfig = ctr.Config

func TestRunOutputExitCodeAndLogs(t *testing.T) {
	e := newEnv(t)
	r := e.run(t, cmd("sh", "-c", "echo hello; echo oops >&2; exit 3"), nil)
	if r.Stdout != "hello\n" || r.Stderr != "oops\n" || r.Code != 3 {
		t.Fatalf("got stdout %q stderr %q code %d", r.Stdout, r.Stderr, r.Code)
	}
	insp, err := e.m.Inspect(context.Background(), r.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if insp.State.Status != ctr.StateExited || insp.State.ExitCode != 3 || insp.State.Running {
		t.Fatalf("state after exit: %+v", insp.State)
	}
	var lines []string
	err = e.m.Logs(context.Background(), r.ID, LogsOptions{Stdout: true, Stderr: true, Tail: -1}, func(m LogMessage) error {
		lines = append(lines, m.Stream+":"+string(m.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, "") != "stdout:hello\nstderr:oops\n" && strings.Join(lines, "") != "stderr:oops\nstdout:hello\n" {
		t.Fatalf("logs: %q", lines)
	}
}

func TestImageConfigUserEnvWorkdir(t *testing.T) {
	e := newEnv(t)
	e.img.Config.Config.Env = append(e.img.Config.Config.Env, "FROM_IMAGE=1", "OVERRIDE=image")
	e.img.Config.Config.WorkingDir = "/srv/app"
	opts := cmd("sh", "-c", `echo "$(id -u):$(id -g):$(id -G) $PWD $FROM_IMAGE $OVERRIDE $HOME $HOSTNAME"`)
	opts.Config.User = "user"
	opts.Config.Env = []string{"OVERRIDE=container"}
	opts.Config.Hostname = "boxy"
	r := e.run(t, opts, nil)
	if got := strings.TrimSpace(r.Stdout); got != "1000:1000:1000 /srv/app 1 container /home/user boxy" {
		t.Fatalf("got %q (stderr %q)", got, r.Stderr)
	}
	opts = cmd("sh", "-c", "id -u; id -g")
	opts.Config.User = "65534:1000"
	if r := e.run(t, opts, nil); r.Stdout != "65534\n1000\n" {
		t.Fatalf("uid:gid: %q %q", r.Stdout, r.Stderr)
	}
	opts = cmd("true")
	opts.Config.User = "nosuchuser"
	id, _, err := e.m.Create(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(context.Background(), id); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "nosuchuser") {
		t.Fatalf("start with unknown user: %v", err)
	}
}

func TestStdinOnce(t *testing.T) {
	e := newEnv(t)
	opts := cmd("sh", "-c", "tr a-z A-Z")
	opts.Config.OpenStdin, opts.Config.StdinOnce, opts.Config.AttachStdin = true, true, true
	r := e.run(t, opts, strings.NewReader("shout\n"))
	if r.Stdout != "SHOUT\n" || r.Code != 0 {
		t.Fatalf("got %q code %d", r.Stdout, r.Code)
	}
}

func TestMissingExecutable(t *testing.T) {
	e := newEnv(t)
	id, _, err := e.m.Create(context.Background(), cmd("/no/such/binary"))
	if err != nil {
		t.Fatal(err)
	}
	err = e.m.Start(context.Background(), id)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("start: %v", err)
	}
	insp, _ := e.m.Inspect(context.Background(), id, false)
	if insp.State.ExitCode != 127 || insp.State.Error == "" {
		t.Fatalf("state: %+v", insp.State)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// PID 1 ignores SIGTERM unless it installs a handler, so stop must kill.
	id, _, err := e.m.Create(ctx, cmd("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(ctx, id); !errdefs.IsNotModified(err) {
		t.Fatalf("second start: %v", err)
	}
	one := 1
	start := time.Now()
	if err := e.m.Stop(ctx, id, StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("stop took %v", d)
	}
	insp, _ := e.m.Inspect(ctx, id, false)
	if insp.State.ExitCode != 137 {
		t.Fatalf("exit code %d", insp.State.ExitCode)
	}
	if err := e.m.Stop(ctx, id, StopOptions{}); !errdefs.IsNotModified(err) {
		t.Fatalf("second stop: %v", err)
	}
	// A handler for the stop signal makes the stop graceful.
	id2, _, _ := e.m.Create(ctx, cmd("sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"))
	e.m.Start(ctx, id2)
	time.Sleep(300 * time.Millisecond)
	ten := 10
	start = time.Now()
	if err := e.m.Stop(ctx, id2, StopOptions{Timeout: &ten}); err != nil {
		t.Fatal(err)
	}
	insp, _ = e.m.Inspect(ctx, id2, false)
	if insp.State.ExitCode != 42 || time.Since(start) > 5*time.Second {
		t.Fatalf("graceful stop: code %d after %v", insp.State.ExitCode, time.Since(start))
	}
}

func TestNamesAndRemove(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sleep", "30")
	opts.Name = "web"
	id, _, err := e.m.Create(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.Create(ctx, opts); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), `The container name "/web" is already in use`) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := e.m.Create(ctx, CreateOptions{Name: "bad name", Config: &ctr.Config{Image: "busybox"}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := e.m.Create(ctx, CreateOptions{Config: &ctr.Config{Image: "missing"}}); !errdefs.IsNotFound(err) {
		t.Fatalf("missing image: %v", err)
	}
	gen, _, err := e.m.Create(ctx, cmd("true"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.m.Get(gen)
	if n := c.snapshot().Name; !strings.Contains(n, "_") {
		t.Fatalf("generated name %q", n)
	}
	if err := e.m.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Remove(ctx, "web", RemoveOptions{}); !errdefs.IsConflict(err) {
		t.Fatalf("remove running: %v", err)
	}
	if err := e.m.Rename("web", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("web"); !errdefs.IsNotFound(err) {
		t.Fatalf("old name still resolves: %v", err)
	}
	if err := e.m.Remove(ctx, id[:12], RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("api"); !errdefs.IsNotFound(err) {
		t.Fatalf("removed container still resolves: %v", err)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sleep", "60")
	opts.Config.Env = []string{"A=container"}
	id, _, _ := e.m.Create(ctx, opts)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	execID, err := e.m.ExecCreate(id, ctr.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo $A $B $(id -u) $PWD; echo err >&2; exit 7"},
		Env: []string{"B=exec"}, User: "user", WorkingDir: "/tmp", AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var cap capture
	if err := e.m.ExecStart(ctx, execID, ExecStartOptions{Stdout: lockedWriter{&cap.mu, &cap.out}, Stderr: lockedWriter{&cap.mu, &cap.errOut}}); err != nil {
		t.Fatal(err)
	}
	if cap.stdout() != "container exec 1000 /tmp\n" || cap.stderr() != "err\n" {
		t.Fatalf("exec output %q %q", cap.stdout(), cap.stderr())
	}
	insp, err := e.m.ExecInspect(execID)
	if err != nil || insp.ExitCode == nil || *insp.ExitCode != 7 || insp.Running {
		t.Fatalf("exec inspect: %+v %v", insp, err)
	}
	if _, err := e.m.ExecCheck(execID); !errdefs.IsConflict(err) {
		t.Fatalf("restart of a finished exec: %v", err)
	}
	bad, _ := e.m.ExecCreate(id, ctr.ExecCreateRequest{Cmd: []string{"nope"}})
	if err := e.m.ExecStart(ctx, bad, ExecStartOptions{}); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
	if insp, _ := e.m.ExecInspect(bad); insp.ExitCode == nil || *insp.ExitCode != 127 {
		t.Fatalf("missing binary exit code: %+v", insp.ExitCode)
	}
	e.m.Kill(ctx, id, "")
	if w, _ := e.m.Wait(ctx, id, ""); (<-w).ExitCode != 137 {
		t.Fatal("kill: wrong exit code")
	}
	if _, err := e.m.ExecCreate(id, ctr.ExecCreateRequest{Cmd: []string{"true"}}); !errdefs.IsConflict(err) {
		t.Fatalf("exec in a stopped container: %v", err)
	}
}
