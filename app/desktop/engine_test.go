package desktop

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/internal/testkit"
)

// These tests drive the services against the real engine (berth-agent,
// native) and a real registry, as the window would.

func startNative(t *testing.T) (*testkit.Agent, *Backend, *recorder) {
	t.Helper()
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	rec := newRecorder()
	b, err := New(Options{Paths: config.Paths{Home: t.TempDir()}, DockerHost: a.Host, Emitter: rec,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	b.Run()
	t.Cleanup(b.Close)
	return a, b, rec
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

func TestNativeMachineStatus(t *testing.T) {
	_, b, rec := startNative(t)
	ms := rec.wait(t, EventMachine, 10*time.Second, func(d any) bool { return d.(MachineStatus).Engine.Answering }).(MachineStatus)
	if ms.Status.State != "running" || !ms.External || ms.Hostd || ms.Engine.OS != "linux" || ms.Engine.Version == "" {
		t.Fatalf("status %+v", ms)
	}
	if _, err := (&Machine{b}).Stop(); err == nil || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Fatalf("stopping an external engine: %v", err)
	}
	if st, err := (&Machine{b}).Start(); err != nil || st.Status.State != "running" {
		t.Fatalf("starting a running external engine: %+v %v", st, err)
	}
}

func TestNativeEngineGoesAway(t *testing.T) {
	a, _, rec := startNative(t)
	rec.wait(t, EventMachine, 10*time.Second, func(d any) bool { return d.(MachineStatus).Engine.Answering })
	m := rec.mark()
	a.Kill()
	rec.waitAfter(t, m, EventMachine, 10*time.Second, func(d any) bool { return d.(MachineStatus).Status.State == "stopped" })
	m = rec.mark()
	t.Log("restarting the agent")
	a.Start()
	t.Log("agent restarted")
	rec.waitAfter(t, m, EventMachine, 15*time.Second, func(d any) bool { return d.(MachineStatus).Status.State == "running" })
}

func TestNativePullRunLogsStop(t *testing.T) {
	_, b, rec := startNative(t)
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	ref := reg.Addr + "/desk/busybox:1"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	im, cs := &Images{b}, &Containers{b}

	opID, err := im.Pull(ref)
	if err != nil {
		t.Fatal(err)
	}
	done := rec.wait(t, EventOp+":"+opID, 2*time.Minute, func(d any) bool { return d.(OpProgress).Done }).(OpProgress)
	if done.Error != "" || len(done.Layers) == 0 {
		t.Fatalf("pull: %+v", done)
	}
	for _, l := range done.Layers {
		if l.Total > 0 && l.Current != l.Total {
			t.Errorf("layer %s ended at %d/%d", l.ID, l.Current, l.Total)
		}
	}
	rec.wait(t, EventImages, 10*time.Second, func(d any) bool { return hasTag(d, ref) })

	res, err := im.Run(RunRequest{Image: ref, Name: "desk-web", Command: `sh -c 'echo hello from berth; echo oops >&2; exec sleep 600'`})
	if err != nil || res.ID == "" || len(res.Fields) > 0 {
		t.Fatalf("run: %+v %v", res, err)
	}
	rec.wait(t, EventContainers, 10*time.Second, func(d any) bool { return hasContainer(d, "desk-web", "running") })

	sid, err := cs.Logs(res.ID, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	rec.wait(t, EventLogs+":"+sid, 10*time.Second, func(d any) bool {
		for _, l := range d.(LogChunk).Lines {
			lines = append(lines, l.Stream+":"+l.Text)
		}
		return len(lines) >= 2
	})
	if !strings.Contains(strings.Join(lines, "|"), "stdout:hello from berth") || !strings.Contains(strings.Join(lines, "|"), "stderr:oops") {
		t.Fatalf("logs %q", lines)
	}

	m := rec.mark()
	if err := cs.Stop(res.ID); err != nil {
		t.Fatal(err)
	}
	rec.waitAfter(t, m, EventContainers, 30*time.Second, func(d any) bool { return hasContainer(d, "desk-web", "exited") })
	rec.wait(t, EventLogs+":"+sid, 10*time.Second, func(d any) bool { return d.(LogChunk).Done })

	results, err := cs.Bulk("remove", []string{res.ID, "no-such-container"})
	if err != nil || results[0].Error != "" || !strings.Contains(results[1].Error, "no-such-container") {
		t.Fatalf("bulk remove: %+v %v", results, err)
	}
	rec.waitAfter(t, m, EventContainers, 10*time.Second, func(d any) bool { return !hasContainer(d, "desk-web", "") })

	// A run the engine refuses carries the engine's own message.
	_, err = im.Run(RunRequest{Image: reg.Addr + "/desk/none:1"})
	if err == nil || strings.Contains(err.Error(), "Error response from daemon") {
		t.Fatalf("run of a missing image: %v", err)
	}
}

func TestNativePullCancel(t *testing.T) {
	_, b, rec := startNative(t)
	im := &Images{b}
	// A registry that accepts the connection and never answers: the pull
	// hangs until cancelled.
	l := listenHanging(t)
	opID, err := im.Pull(l + "/slow/image:1")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if !im.Cancel(opID) {
		t.Fatal("the pull had already ended")
	}
	done := rec.wait(t, EventOp+":"+opID, 10*time.Second, func(d any) bool { return d.(OpProgress).Done }).(OpProgress)
	if !strings.Contains(done.Error, "cancel") {
		t.Fatalf("cancelled pull: %+v", done)
	}
}

func hasTag(d any, ref string) bool {
	for _, img := range d.([]Image) {
		for _, t := range img.Tags {
			if t == ref {
				return true
			}
		}
	}
	return false
}

// hasContainer: a container named name in state ("" = any state).
func hasContainer(d any, name, state string) bool {
	list, ok := d.([]Container)
	if !ok {
		return false
	}
	for _, c := range list {
		if c.Name == name && (state == "" || c.State == state) {
			return true
		}
	}
	return false
}

// listenHanging accepts connections on a loopback port and never answers.
func listenHanging(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}
