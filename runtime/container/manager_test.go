//go:build linux

package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"

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
	// A 500, as dockerd answers a user it cannot find at start.
	if err := e.m.Start(context.Background(), id); errdefs.KindOf(err) != errdefs.KindUnknown || !strings.Contains(err.Error(), "nosuchuser") {
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
	// Until the init has exec'd sleep it is the Go runtime, which dies of a
	// SIGTERM: wait for sleep itself (as runc, a start returns before the
	// exec).
	insp, _ := e.m.Inspect(ctx, id, false)
	waitComm(t, insp.State.Pid, "sleep")
	one := 1
	start := time.Now()
	if err := e.m.Stop(ctx, id, StopOptions{Timeout: &one}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("stop took %v", d)
	}
	insp, _ = e.m.Inspect(ctx, id, false)
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
	if insp, _ := e.m.ExecInspect(bad); insp.ExitCode == nil || *insp.ExitCode != 126 { // dockerd's code for an exec that cannot start
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

func TestTTYAndResize(t *testing.T) {
	e := newEnv(t)
	opts := cmd("sh", "-c", "tty; stty size; sleep 0.3; stty size")
	opts.Config.Tty = true
	opts.HostConfig = &ctr.HostConfig{ConsoleSize: [2]uint{30, 100}}
	ctx := context.Background()
	id, _, err := e.m.Create(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := e.m.Attach(id, AttachOptions{Stdout: true, Stderr: true, Stream: true})
	if !at.Tty {
		t.Fatal("attachment does not report the TTY")
	}
	var cap capture
	done := make(chan error, 1)
	go func() { done <- at.Run(ctx, nil, lockedWriter{&cap.mu, &cap.out}, nil) }()
	w, _ := e.m.Wait(ctx, id, "next-exit")
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := e.m.Resize(id, 40, 120); err != nil {
		t.Fatal(err)
	}
	if r := <-w; r.ExitCode != 0 {
		t.Fatalf("exit %d", r.ExitCode)
	}
	<-done
	out := strings.ReplaceAll(cap.stdout(), "\r\n", "\n")
	if out != "/dev/pts/0\n30 100\n40 120\n" {
		t.Fatalf("tty output %q", out)
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	e := newEnv(t)
	opts := cmd("sh", "-c", "tail /dev/zero")
	opts.HostConfig = &ctr.HostConfig{Resources: ctr.Resources{Memory: 32 << 20}}
	r := e.run(t, opts, nil)
	insp, _ := e.m.Inspect(context.Background(), r.ID, false)
	if r.Code != 137 || !insp.State.OOMKilled {
		t.Fatalf("code %d OOMKilled %v", r.Code, insp.State.OOMKilled)
	}
	// Without a limit nothing is OOM-killed.
	r = e.run(t, cmd("true"), nil)
	if insp, _ := e.m.Inspect(context.Background(), r.ID, false); insp.State.OOMKilled {
		t.Fatal("OOMKilled without a limit")
	}
}

func TestPidsLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	limit := int64(8)
	// The inner shell dies at its first failed fork; PID 1 carries on.
	opts := cmd("sh", "-c", "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done'; exec sleep 30")
	opts.HostConfig = &ctr.HostConfig{Resources: ctr.Resources{PidsLimit: &limit}}
	id, _, _ := e.m.Create(ctx, opts)
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	top, err := e.m.Top(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(top.Processes); n < 4 || n > 8 {
		t.Fatalf("%d processes under pids-limit 8: %v", n, top.Processes)
	}
	var logs strings.Builder
	e.m.Logs(ctx, id, LogsOptions{Stderr: true, Tail: -1}, func(m LogMessage) error { logs.Write(m.Line); return nil })
	if !strings.Contains(logs.String(), "can't fork") {
		t.Fatalf("no fork failure logged: %q", logs.String())
	}
	if top.Titles[1] != "PID" || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep 30") {
		t.Fatalf("top: %v %v", top.Titles, top.Processes)
	}
}

func TestPauseUnpause(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _, _ := e.m.Create(ctx, cmd("sleep", "60"))
	e.m.Start(ctx, id)
	if err := e.m.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Pause(ctx, id); !errdefs.IsConflict(err) {
		t.Fatalf("second pause: %v", err)
	}
	insp, _ := e.m.Inspect(ctx, id, false)
	if !insp.State.Paused || insp.State.Status != ctr.StatePaused {
		t.Fatalf("state %+v", insp.State)
	}
	if err := e.m.Start(ctx, id); !errdefs.IsConflict(err) {
		t.Fatalf("start paused: %v", err)
	}
	if _, err := e.m.ExecCreate(id, ctr.ExecCreateRequest{Cmd: []string{"true"}}); !errdefs.IsConflict(err) {
		t.Fatalf("exec in paused: %v", err)
	}
	if err := e.m.Unpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Unpause(ctx, id); errdefs.KindOf(err) != errdefs.KindUnknown { // a 500, as dockerd's
		t.Fatalf("second unpause: %v", err)
	}
	// A paused container can still be force-removed.
	e.m.Pause(ctx, id)
	if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sh", "-c", "exit 2")
	opts.HostConfig = &ctr.HostConfig{RestartPolicy: ctr.RestartPolicy{Name: ctr.RestartPolicyOnFailure, MaximumRetryCount: 2}}
	id, _, _ := e.m.Create(ctx, opts)
	e.m.Start(ctx, id)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		insp, _ := e.m.Inspect(ctx, id, false)
		if insp.RestartCount == 2 && insp.State.Status == ctr.StateExited {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	insp, _ := e.m.Inspect(ctx, id, false)
	t.Fatalf("after 10 s: restarts %d, state %s", insp.RestartCount, insp.State.Status)
}

func TestRestartPolicyAlwaysStoppedByUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sh", "-c", "sleep 0.1")
	opts.HostConfig = &ctr.HostConfig{RestartPolicy: ctr.RestartPolicy{Name: ctr.RestartPolicyAlways}}
	id, _, _ := e.m.Create(ctx, opts)
	e.m.Start(ctx, id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		insp, _ := e.m.Inspect(ctx, id, false)
		if insp.RestartCount >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restarts: %+v", insp.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.m.Stop(ctx, id, StopOptions{}); err != nil && !errdefs.IsNotModified(err) {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	insp, _ := e.m.Inspect(ctx, id, false)
	if insp.State.Running || insp.State.Status != ctr.StateExited {
		t.Fatalf("still restarting after stop: %+v", insp.State)
	}
}

func TestNoLeaksAfterRemove(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cycle := func(tty bool) {
		opts := cmd("sh", "-c", "echo hi; sleep 5")
		opts.Config.Tty = tty
		opts.Config.OpenStdin = true
		id, _, err := e.m.Create(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		x, _ := e.m.ExecCreate(id, ctr.ExecCreateRequest{Cmd: []string{"echo", "x"}, AttachStdout: true, Tty: tty})
		if err := e.m.ExecStart(ctx, x, ExecStartOptions{Stdout: &strings.Builder{}}); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Remove(ctx, id, RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	cycle(false) // warm up lazily created runtime state
	cycle(true)
	time.Sleep(200 * time.Millisecond)
	base := filepath.Dir(e.cfg.Root)
	fds, gor, mounts := countFDs(t), runtime.NumGoroutine(), countMounts(t, base)
	before, _ := os.ReadFile("/proc/self/mountinfo")
	mntns, _ := os.Readlink("/proc/self/ns/mnt")
	for i := 0; i < 10; i++ {
		cycle(i%2 == 0)
	}
	time.Sleep(300 * time.Millisecond)
	if n := countFDs(t); n > fds {
		t.Errorf("file descriptors: %d before, %d after", fds, n)
	}
	if n := runtime.NumGoroutine(); n > gor+2 {
		t.Errorf("goroutines: %d before, %d after\n%s", gor, n, goroutines())
	}
	// The engine's main thread must stay in the host's mount namespace
	// (see init.go): /proc/self would otherwise show a dead container's.
	if ns, _ := os.Readlink("/proc/self/ns/mnt"); ns != mntns {
		t.Errorf("main thread moved from mount namespace %s to %s", mntns, ns)
	}
	if n := countMounts(t, base); n != mounts {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		t.Errorf("mounts: %d before, %d after\n%s\n----\n%s", mounts, n, before, b)
	}
	for _, sub := range []string{"memory", "pids", "freezer"} {
		entries, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", sub, e.cfg.CgroupParent))
		for _, d := range entries {
			if d.IsDir() {
				t.Errorf("cgroup left behind: %s/%s", sub, d.Name())
			}
		}
	}
	if entries, _ := os.ReadDir(e.cfg.RuntimeRoot); len(entries) != 0 {
		t.Errorf("runtime state left behind: %d entries", len(entries))
	}
	if entries, _ := os.ReadDir(e.cfg.Root); len(entries) != 0 {
		t.Errorf("container dirs left behind: %d", len(entries))
	}
}

func countFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// countMounts counts this process's mounts under dir (other tests on the
// machine mount and unmount elsewhere meanwhile).
func countMounts(t *testing.T, dir string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), dir)
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func TestLogsFollowTailSince(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _, _ := e.m.Create(ctx, cmd("sh", "-c", "for i in 1 2 3; do echo line$i; done; sleep 0.5; echo late; echo bad >&2"))
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 3; {
		n = 0
		e.m.Logs(ctx, id, LogsOptions{Stdout: true, Tail: -1}, func(LogMessage) error { n++; return nil })
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	start := time.Now()
	err := e.m.Logs(ctx, id, LogsOptions{Stdout: true, Follow: true, Tail: 2}, func(m LogMessage) error {
		got = append(got, strings.TrimSpace(string(m.Line)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Tail 2 of what was there when we started, then the rest as it came,
	// stdout only, ending when the container stopped.
	if strings.Join(got, ",") != "line2,line3,late" {
		t.Fatalf("follow: %v", got)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatalf("follow returned before the container exited")
	}
	var all []LogMessage
	e.m.Logs(ctx, id, LogsOptions{Stdout: true, Stderr: true, Tail: -1}, func(m LogMessage) error { all = append(all, m); return nil })
	if len(all) != 5 {
		t.Fatalf("all logs: %d", len(all))
	}
	var since []string
	e.m.Logs(ctx, id, LogsOptions{Stdout: true, Stderr: true, Tail: -1, Since: all[3].Time.Add(-time.Nanosecond)}, func(m LogMessage) error {
		since = append(since, strings.TrimSpace(string(m.Line)))
		return nil
	})
	// stdout and stderr are copied concurrently: their relative order is not fixed.
	slices.Sort(since)
	if strings.Join(since, ",") != "bad,late" {
		t.Fatalf("since: %v", since)
	}
	var until []string
	e.m.Logs(ctx, id, LogsOptions{Stdout: true, Tail: -1, Until: all[2].Time}, func(m LogMessage) error {
		until = append(until, strings.TrimSpace(string(m.Line)))
		return nil
	})
	if strings.Join(until, ",") != "line1,line2,line3" {
		t.Fatalf("until: %v", until)
	}
}

func TestUlimits(t *testing.T) {
	e := newEnv(t)
	opts := cmd("sh", "-c", "ulimit -n; ulimit -Hn")
	opts.HostConfig = &ctr.HostConfig{Resources: ctr.Resources{Ulimits: []*ctr.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}}}}
	if r := e.run(t, opts, nil); r.Stdout != "512\n1024\n" {
		t.Fatalf("ulimits: %q %q", r.Stdout, r.Stderr)
	}
}

func TestLogRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
	opts.HostConfig = &ctr.HostConfig{LogConfig: ctr.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "8k", "max-file": "3"}}}
	r := e.run(t, opts, nil)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	c, _ := e.m.Get(r.ID)
	for i, name := range []string{c.LogPath(), c.LogPath() + ".1", c.LogPath() + ".2"} {
		st, err := os.Stat(name)
		if err != nil || st.Size() > 8<<10+200 {
			t.Fatalf("log file %d: %v %v", i, st, err)
		}
	}
	if _, err := os.Stat(c.LogPath() + ".3"); err == nil {
		t.Fatal("more than max-file files kept")
	}
	var lines []string
	e.m.Logs(ctx, r.ID, LogsOptions{Stdout: true, Tail: -1}, func(m LogMessage) error {
		lines = append(lines, strings.SplitN(string(m.Line), "-", 3)[1])
		return nil
	})
	// What is kept is the newest lines, in order, ending with the last one.
	if len(lines) < 100 || lines[len(lines)-1] != "399" {
		t.Fatalf("%d lines kept, last %v", len(lines), lines[len(lines)-1:])
	}
	for i := 1; i < len(lines); i++ {
		if a, b := lines[i-1], lines[i]; len(a) > len(b) || len(a) == len(b) && a >= b {
			t.Fatalf("out of order at %d: %s then %s", i, a, b)
		}
	}
	var tail []string
	e.m.Logs(ctx, r.ID, LogsOptions{Stdout: true, Tail: 3}, func(m LogMessage) error {
		tail = append(tail, strings.SplitN(string(m.Line), "-", 3)[1])
		return nil
	})
	if strings.Join(tail, ",") != "397,398,399" {
		t.Fatalf("tail across rotation: %v", tail)
	}
	bad := cmd("true")
	bad.HostConfig = &ctr.HostConfig{LogConfig: ctr.LogConfig{Type: "json-file", Config: map[string]string{"max-sise": "1m"}}}
	if _, _, err := e.m.Create(ctx, bad); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("unknown log opt: %v", err)
	}
}

func TestLogFollowAcrossRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := cmd("sh", "-c", "sleep 0.3; i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
	opts.HostConfig = &ctr.HostConfig{LogConfig: ctr.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "4k", "max-file": "10"}}}
	id, _, _ := e.m.Create(ctx, opts)
	e.m.Start(ctx, id)
	n := 0
	err := e.m.Logs(ctx, id, LogsOptions{Stdout: true, Follow: true, Tail: -1}, func(m LogMessage) error {
		if want := fmt.Sprintf("line-%d-", n); !strings.HasPrefix(string(m.Line), want) {
			return fmt.Errorf("got %q, want %s…", m.Line, want)
		}
		n++
		return nil
	})
	if err != nil || n != 300 {
		t.Fatalf("followed %d lines: %v", n, err)
	}
}

func TestCloseUnmountsCreatedContainers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _, err := e.m.Create(ctx, cmd("true"))
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(filepath.Dir(e.cfg.Root), "rootfs", id, "merged")
	if ok, _ := mountinfo.Mounted(merged); !ok {
		t.Fatal("created container has no rootfs mounted")
	}
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.Mounted(merged); ok {
		t.Fatal("rootfs still mounted after Close")
	}
}

func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				ctx := context.Background()
				opts := cmd("sh", "-c", fmt.Sprintf("echo %d-%d", g, i))
				opts.HostConfig = &ctr.HostConfig{AutoRemove: i%2 == 0}
				id, _, err := e.m.Create(ctx, opts)
				if err != nil {
					errs <- err
					return
				}
				w, _ := e.m.Wait(ctx, id, ctr.WaitConditionNextExit)
				if err := e.m.Start(ctx, id); err != nil {
					errs <- err
					return
				}
				if res := <-w; res.ExitCode != 0 {
					errs <- fmt.Errorf("exit %d", res.ExitCode)
				}
				if i%2 == 1 {
					if err := e.m.Remove(ctx, id, RemoveOptions{}); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.m.All()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(e.m.All()); n != 0 {
		t.Fatalf("%d containers left", n)
	}
}

// waitComm waits until process pid runs the program named comm.
func waitComm(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(b)) == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is %q, not %s, after 10s", pid, strings.TrimSpace(string(b)), comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An engine that shuts down leaves no cgroup behind: its containers' are
// removed as they stop, its parent when it closes.
func TestCloseRemovesTheCgroupParent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _, err := e.m.Create(ctx, cmd("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	parents := func() []string {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.cfg.CgroupParent))
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", e.cfg.CgroupParent)); err == nil {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.cfg.CgroupParent))
		}
		return dirs
	}
	if len(parents()) == 0 {
		t.Fatal("a running container made no cgroup under the parent")
	}
	if err := e.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := parents(); len(left) != 0 {
		t.Fatalf("cgroup parent left after close: %v", left)
	}
}
