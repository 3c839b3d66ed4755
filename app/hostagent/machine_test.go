package hostagent

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/fake"
)

func TestStartStopThroughTheSocket(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t, time.Minute)

	// Stopped: the docker CLI is told so, in words.
	if msg := e.docker.Fail("version"); !strings.Contains(msg, "Berth is stopped") {
		t.Fatalf("docker version while stopped: %s", msg)
	}
	fi, err := os.Stat(e.paths.DockerSocket())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("docker socket: %v %v", fi, err)
	}
	if fi, err := os.Stat(e.paths.HostdSocket()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hostd socket: %v %v", fi, err)
	}

	events, err := e.api.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen []hostapi.State
	var seenMu sync.Mutex
	go func() {
		for st := range events {
			seenMu.Lock()
			if len(seen) == 0 || seen[len(seen)-1] != st.State {
				seen = append(seen, st.State)
			}
			seenMu.Unlock()
		}
	}()

	st, err := e.api.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != hostapi.Running || st.StartedAt.IsZero() || st.HostdVersion != "test" || st.DockerHost != e.paths.DockerHost() {
		t.Fatalf("after start: %+v", st)
	}
	if st.EngineVersion == "" || st.Kernel != "6.1-test" || st.AgentVersion != "test-agent" || st.DiskUsedBytes != 12345 {
		t.Fatalf("versions and disk from the guest: %+v", st)
	}
	// The stock docker CLI through the forwarded socket, a hijacked attach
	// stream included (stdin in, output back, exit code).
	if got := strings.TrimSpace(e.docker.Must("version", "--format", "{{.Server.Os}}")); got != "linux" {
		t.Fatalf("server os %q", got)
	}
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	ref := reg.Addr + "/busybox:1"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	e.docker.Must("pull", "-q", ref)
	r := e.docker.Run(strings.NewReader("through the socket\n"), "run", "--rm", "-i", ref, "sh", "-c", "cat; exit 3")
	if r.Code != 3 || r.Stdout != "through the socket\n" {
		t.Fatalf("run -i: exit %d, out %q, err %q", r.Code, r.Stdout, r.Stderr)
	}
	// A second Start while running answers at once.
	if st2, err := e.api.Start(ctx); err != nil || st2.State != hostapi.Running || e.fake.Starts() != 1 {
		t.Fatalf("second start: %+v %v (%d starts)", st2, err, e.fake.Starts())
	}
	if _, err := e.api.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if msg := e.docker.Fail("version"); !strings.Contains(msg, "Berth is stopped") {
		t.Fatalf("docker version after stop: %s", msg)
	}
	time.Sleep(100 * time.Millisecond)
	seenMu.Lock()
	got := seen
	seenMu.Unlock()
	want := []hostapi.State{hostapi.Stopped, hostapi.Starting, hostapi.Running, hostapi.Stopping, hostapi.Stopped}
	if strings.Join(states(got), ",") != strings.Join(states(want), ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func states(s []hostapi.State) []string {
	var out []string
	for _, x := range s {
		out = append(out, string(x))
	}
	return out
}

func TestCrashRestartsThenGivesUp(t *testing.T) {
	e := newEnv(t, envOptions{boot: true})
	e.waitState(hostapi.Running, time.Minute)

	// A crash: hostd boots the machine again and the socket works again.
	e.fake.Crash("qemu exited: signal: killed")
	deadline := time.Now().Add(30 * time.Second)
	for e.fake.Starts() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no restart after the crash")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := e.waitState(hostapi.Running, time.Minute)
	if st.Restarts != 1 || !strings.Contains(st.Error, "signal: killed") {
		t.Fatalf("after a crash: restarts %d, last crash %q", st.Restarts, st.Error)
	}
	e.docker.Must("version")

	// It keeps dying: after MaxCrashes (3) within the window, Error.
	for i := 0; i < 3; i++ {
		e.waitState(hostapi.Running, time.Minute)
		n := e.fake.Starts()
		e.fake.Crash("guest panicked")
		for i < 2 && e.fake.Starts() == n { // the 4th crash is not restarted
			time.Sleep(10 * time.Millisecond)
		}
	}
	st = e.waitState(hostapi.Error, time.Minute)
	if !strings.Contains(st.Error, "died 4 times") || !strings.Contains(st.Error, "guest panicked") {
		t.Fatalf("error %q", st.Error)
	}
	if msg := e.docker.Fail("version"); !strings.Contains(msg, "guest panicked") {
		t.Fatalf("docker version after giving up: %s", msg)
	}
	// The user starting it again is heard.
	if _, err := e.api.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	e.docker.Must("version")
}

func TestStopDuringBootAndClientsWaiting(t *testing.T) {
	var slow *slowDriver
	e := newEnv(t, envOptions{wrap: func(f *fake.Driver) driver.Driver {
		slow = &slowDriver{Driver: f, release: make(chan struct{})}
		return slow
	}})
	ctx := ctxT(t, time.Minute)

	// A docker client that connects during the boot waits for it.
	startErr := make(chan error, 1)
	go func() { _, err := e.api.Start(ctx); startErr <- err }()
	e.waitState(hostapi.Starting, 10*time.Second)
	versionDone := make(chan string, 1)
	go func() { versionDone <- e.docker.Must("version", "--format", "{{.Server.Os}}") }()
	time.Sleep(300 * time.Millisecond)
	select {
	case out := <-versionDone:
		t.Fatalf("docker answered before the machine ran: %q", out)
	default:
	}
	close(slow.release)
	if err := <-startErr; err != nil {
		t.Fatal(err)
	}
	if out := <-versionDone; strings.TrimSpace(out) != "linux" {
		t.Fatalf("docker version %q", out)
	}

	// Stop while a boot is in flight cancels it; the waiting Start says so.
	e.api.Stop(ctx, false)
	slow.release = make(chan struct{})
	go func() { _, err := e.api.Start(ctx); startErr <- err }()
	e.waitState(hostapi.Starting, 10*time.Second)
	if _, err := e.api.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-startErr; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("start interrupted by stop: %v", err)
	}
	if st := e.waitState(hostapi.Stopped, 10*time.Second); st.Error != "" {
		t.Fatalf("after a cancelled start: %+v", st)
	}
}

func TestShutdownStopsTheMachine(t *testing.T) {
	e := newEnv(t, envOptions{boot: true})
	e.waitState(hostapi.Running, time.Minute)
	if err := e.api.Shutdown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
		e.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("hostd did not exit")
	}
	if st, _ := e.fake.Status(context.Background()); st.State != driver.Stopped {
		t.Fatalf("machine %s after hostd exited", st.State)
	}
	if _, err := os.Stat(e.paths.DockerSocket()); err == nil {
		t.Error("docker socket left behind")
	}
}
