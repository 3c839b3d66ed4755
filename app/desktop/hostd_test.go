package desktop

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/internal/testkit"
)

// TestWithHostd drives the machine the way the window does, against the
// real host agent: Start launches `berth hostd` (the real berth binary),
// which runs the engine with the native driver (berth-agent as a host
// process, no VM), forwards its socket and reports through /events. Then
// settings, logs, restart, stop and quit go through that hostd.
func TestWithHostd(t *testing.T) {
	testkit.RequireRoot(t)
	berth := testkit.Binary(t, "berth")
	t.Setenv("BERTH_AGENT", testkit.Binary(t, "berth-agent"))
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the start-at-login item
	paths := testkit.NativeHome(t)
	home := paths.Home
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(paths.LogsDir() + "/hostd.log")
			t.Logf("hostd log:\n%s", lastLines(string(log), 40))
		}
		endHostd(t, paths)
		testkit.RemoveCgroup("/berth-" + hostagent.MachineName(paths))
		os.RemoveAll(home)
	})

	rec := newRecorder()
	b, err := New(Options{Paths: paths, BerthBinary: berth, Emitter: rec,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	b.Run()
	defer b.Close()
	if b.explicit || b.DockerHost() != paths.DockerHost() {
		t.Fatalf("engine address %s (explicit %v), want hostd's socket", b.DockerHost(), b.explicit)
	}

	// No hostd yet: stopped, and settings come from the file.
	rec.wait(t, EventMachine, 5*time.Second, func(d any) bool { ms := d.(MachineStatus); return !ms.Hostd && ms.Status.State == "stopped" })
	st := &Settings{b}
	if v, err := st.Get(); err != nil || v.Hostd || v.Settings.Driver != "native" {
		t.Fatalf("settings without hostd: %+v %v", v, err)
	}

	// Start launches hostd, which boots the engine; the window follows.
	m := rec.mark()
	ms, err := b.Machine().Start()
	if err != nil || ms.Status.State != "running" || !ms.Hostd || ms.External || ms.Status.Driver != "native" || !ms.Engine.Answering {
		t.Fatalf("start: %+v %v", ms, err)
	}
	rec.waitAfter(t, m, EventMachine, 5*time.Second, func(d any) bool { return d.(MachineStatus).Status.State == "starting" })
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool {
		ms := d.(MachineStatus)
		return ms.Hostd && ms.Status.State == "running" && ms.Engine.Answering && ms.Engine.OS == "linux"
	})

	// The engine behind hostd's socket feeds the live lists.
	docker := testkit.NewDocker(t, paths.DockerHost())
	docker.Must("volume", "create", "desk-hostd")
	rec.wait(t, EventVolumes, 10*time.Second, func(d any) bool {
		for _, v := range d.([]Volume) {
			if v.Name == "desk-hostd" {
				return true
			}
		}
		return false
	})

	// Settings save through hostd: its limits, its field errors, and a
	// change to the running machine asks for a restart.
	v, err := st.Get()
	if err != nil || !v.Hostd || v.Limits.MaxCPUs < 1 || v.RestartRequired {
		t.Fatalf("get: %+v %v", v, err)
	}
	bad := v.Settings
	bad.CPUs = v.Limits.MaxCPUs + 1
	res, err := st.Save(bad)
	if err != nil || len(res.Fields) != 1 || res.Fields[0].Field != "cpus" || !strings.Contains(res.Fields[0].Message, "between 1 and") {
		t.Fatalf("save refused: %+v %v", res, err)
	}
	good := v.Settings
	good.InsecureRegistries = []string{"registry.test:5000"}
	res, err = st.Save(good)
	if err != nil || len(res.Fields) > 0 || !res.View.Hostd || !res.View.RestartRequired {
		t.Fatalf("save: %+v %v", res, err)
	}
	if saved, err := config.Load(paths); err != nil || len(saved.InsecureRegistries) != 1 {
		t.Fatalf("the settings file after save: %+v %v", saved, err)
	}

	// Troubleshoot reads hostd's and the engine's logs through hostd.
	ts := &Troubleshoot{b}
	if out, err := ts.Logs("hostd", 50); err != nil || !strings.Contains(out, "hostd serving") || !strings.Contains(out, "settings saved") {
		t.Fatalf("hostd log: %q %v", out, err)
	}
	if out, err := ts.Logs("agent", 50); err != nil || !strings.Contains(out, "engine ready") {
		t.Fatalf("agent log: %q %v", out, err)
	}
	if _, err := ts.Logs("/etc/passwd", 5); err == nil {
		t.Fatal("a log outside the sources: want an error")
	}
	if d := ts.Diagnostics(); !d.Hostd || !strings.Contains(d.Engine, "API") {
		t.Fatalf("diagnostics: %+v", d)
	}

	// Restart applies the saved settings; the volume outlives it.
	m = rec.mark()
	if ms, err := ts.RestartMachine(); err != nil || ms.Status.State != "running" || !ms.Engine.Answering {
		t.Fatalf("restart: %+v %v", ms, err)
	}
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool {
		return d.(MachineStatus).Status.State == "stopped" || d.(MachineStatus).Status.State == "stopping"
	})
	if v, err := st.Get(); err != nil || v.RestartRequired {
		t.Fatalf("after restart: %+v %v", v, err)
	}
	if out := docker.Must("volume", "ls", "-q"); !strings.Contains(out, "desk-hostd") {
		t.Fatalf("volumes after restart: %q", out)
	}

	// Stopped from elsewhere (`berth stop` ends hostd too): the window
	// learns it from hostd's /events and its end, and Start launches hostd
	// again.
	m = rec.mark()
	cli := exec.Command(berth, "stop")
	cli.Env = append(os.Environ(), "BERTH_HOME="+home)
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("berth stop: %v\n%s", err, out)
	}
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool { ms := d.(MachineStatus); return ms.Hostd && ms.Status.State == "stopping" })
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool { ms := d.(MachineStatus); return !ms.Hostd && ms.Status.State == "stopped" })
	if ms, err := b.Machine().Start(); err != nil || ms.Status.State != "running" || !ms.Hostd || !ms.Engine.Answering {
		t.Fatalf("start again: %+v %v", ms, err)
	}

	// Stop: the engine goes away, hostd stays.
	m = rec.mark()
	if ms, err := b.Machine().Stop(); err != nil || ms.Status.State != "stopped" || !ms.Hostd || ms.Engine.Answering {
		t.Fatalf("stop: %+v %v", ms, err)
	}
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool { ms := d.(MachineStatus); return ms.Hostd && ms.Status.State == "stopped" })
	if r := docker.Run(nil, "version"); r.Code == 0 {
		t.Fatal("the engine still answers after stop")
	}

	// Quit ends hostd; the window shows it gone.
	m = rec.mark()
	if err := b.Machine().Quit(true); err != nil {
		t.Fatal(err)
	}
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool { return !d.(MachineStatus).Hostd })
	if pid := hostdPID(paths); pid > 0 {
		waitGone(t, pid, 10*time.Second)
	}
}

// hostdPID is the pid hostd wrote in its lock file (0 if none).
func hostdPID(paths config.Paths) int {
	b, err := os.ReadFile(paths.LockFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); alive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hostd (pid %d) still runs %v after quit", pid, d)
		}
	}
}

// endHostd leaves nothing running after a failed test: it asks hostd to
// stop the engine and exit, and kills it if it does not.
func endHostd(t *testing.T, paths config.Paths) {
	pid := hostdPID(paths)
	if pid <= 0 || !alive(pid) {
		return
	}
	c := hostapi.NewClient(paths.HostdSocket())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Stop(ctx, true)
	c.Shutdown(ctx, true)
	for deadline := time.Now().Add(15 * time.Second); alive(pid) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		t.Logf("killing hostd (pid %d)", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
