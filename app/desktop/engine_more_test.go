package desktop

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// runBusybox pulls the test image and starts a long-running container.
func runBusybox(t *testing.T, a *testkit.Agent, b *Backend, name string) (string, string) {
	t.Helper()
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	ref := reg.Addr + "/desk/busybox:1"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	testkit.NewDocker(t, a.Host).Must("pull", ref)
	res, err := b.Images().Run(RunRequest{Image: ref, Name: name, Command: "sleep 600"})
	if err != nil || res.ID == "" {
		t.Fatalf("run: %+v %v", res, err)
	}
	// Killed, not stopped: sleep ignores SIGTERM and would cost 10 s.
	t.Cleanup(func() { b.Containers().Remove(res.ID, true) })
	return res.ID, ref
}

func TestNativeTerminal(t *testing.T) {
	a, b, rec := startNative(t)
	id, _ := runBusybox(t, a, b, "desk-term")
	cs := b.Containers()
	sid, err := cs.Terminal(id, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.TerminalResize(sid, 100, 30); err != nil {
		t.Fatal(err)
	}
	if err := cs.TerminalInput(sid, "echo $((6*7))berth; stty size\n"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	defer func() {
		if t.Failed() {
			t.Logf("terminal output: %q", out.String())
		}
	}()
	rec.wait(t, EventTerm+":"+sid, 15*time.Second, func(d any) bool {
		o := d.(TermOutput)
		raw, _ := base64.StdEncoding.DecodeString(o.Data)
		out.Write(raw)
		return strings.Contains(out.String(), "42berth") && strings.Contains(out.String(), "30 100")
	})
	t.Logf("terminal said %q", out.String())
	cs.TerminalInput(sid, "exit\n")
	rec.wait(t, EventTerm+":"+sid, 15*time.Second, func(d any) bool { return d.(TermOutput).Exited })
	if err := cs.TerminalInput(sid, "x"); err == nil {
		t.Fatal("input to a closed terminal: want an error")
	}
	if _, err := cs.Terminal("no-such-container", 80, 24); err == nil || !strings.Contains(err.Error(), "no-such-container") {
		t.Fatalf("terminal in a missing container: %v", err)
	}
}

func TestNativeInspectPauseAndHello(t *testing.T) {
	a, b, rec := startNative(t)
	id, ref := runBusybox(t, a, b, "desk-pause")
	cs := b.Containers()
	doc, err := cs.Inspect(id)
	if err != nil || !strings.Contains(doc, `"Name": "/desk-pause"`) {
		t.Fatalf("inspect: %v\n%.300s", err, doc)
	}
	m := rec.mark()
	if err := cs.Pause(id); err != nil {
		t.Fatal(err)
	}
	rec.waitAfter(t, m, EventContainers, 10*time.Second, func(d any) bool { return hasContainer(d, "desk-pause", "paused") })
	if err := cs.Unpause(id); err != nil {
		t.Fatal(err)
	}
	rec.waitAfter(t, m, EventContainers, 10*time.Second, func(d any) bool { return hasContainer(d, "desk-pause", "running") })
	if err := cs.Remove(id, false); err == nil {
		t.Fatal("removing a running container without force: want the engine's refusal")
	}
	if err := cs.Remove(id, true); err != nil {
		t.Fatal(err)
	}

	// The first-run card runs berth/hello.
	if _, err := b.Images().RunHello(); err == nil {
		t.Fatal("hello without the image: want an error")
	}
	testkit.NewDocker(t, a.Host).Must("tag", ref, HelloImage)
	hid, err := b.Images().RunHello()
	if err != nil || hid == "" {
		t.Fatalf("hello: %q %v", hid, err)
	}
}

func TestNativeStats(t *testing.T) {
	a, b, rec := startNative(t)
	id, _ := runBusybox(t, a, b, "desk-stats")
	sid, err := b.Containers().Stats(id)
	if err != nil {
		t.Fatal(err)
	}
	s := rec.wait(t, EventStats+":"+sid, 15*time.Second, func(d any) bool { return d.(StatsSample).MemBytes > 0 }).(StatsSample)
	if s.MemLimit == 0 || s.Error != "" {
		t.Fatalf("sample %+v", s)
	}
	if !b.Containers().CloseStream(sid) {
		t.Fatal("the stats stream had ended by itself")
	}
}

func TestNativeVolumes(t *testing.T) {
	a, b, rec := startNative(t)
	v := &Volumes{b}
	vol, err := v.Create("desk-data")
	if err != nil || vol.Name != "desk-data" {
		t.Fatalf("create: %+v %v", vol, err)
	}
	rec.wait(t, EventVolumes, 10*time.Second, func(d any) bool {
		for _, x := range d.([]Volume) {
			if x.Name == "desk-data" {
				return true
			}
		}
		return false
	})
	if _, err := v.Create("bad name!"); err == nil {
		t.Fatal("a bad volume name: want an error")
	}
	// A container writes into it through the run dialog's volumes field;
	// while that container exists the engine refuses to remove the volume.
	id, ref := runBusybox(t, a, b, "desk-vol-base")
	b.Containers().Remove(id, true)
	res, err := b.Images().Run(RunRequest{Image: ref, Name: "desk-vol", Volumes: []string{"desk-data:/data"},
		Command: "sh -c 'echo kept > /data/note'"})
	if err != nil || len(res.Fields) > 0 {
		t.Fatalf("run with a volume: %+v %v", res, err)
	}
	out := testkit.NewDocker(t, a.Host).Must("run", "--rm", "-v", "desk-data:/data", ref, "cat", "/data/note")
	if out != "kept\n" {
		t.Fatalf("the volume holds %q", out)
	}
	if err := v.Remove("desk-data", false); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("removing a volume in use: %v", err)
	}
	if err := b.Containers().Remove(res.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("desk-data", false); err != nil {
		t.Fatal(err)
	}
	m := rec.mark()
	rec.waitAfter(t, m, EventVolumes, 10*time.Second, func(d any) bool {
		for _, x := range d.([]Volume) {
			if x.Name == "desk-data" {
				return false
			}
		}
		return true
	})
	if err := v.Remove("desk-data", false); err == nil {
		t.Fatal("removing a missing volume: want the engine's not-found")
	}
}

func TestNativeBuild(t *testing.T) {
	a, b, rec := startNative(t)
	_, ref := runBusybox(t, a, b, "desk-build-base")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nCOPY hello.sh /hello.sh\nRUN chmod +x /hello.sh\nCMD [\"/hello.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.sh"), []byte("#!/bin/sh\necho Hello, World!\n"), 0o644)
	opID, err := b.Images().Build(dir, "desk/built:1")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	done := rec.wait(t, EventOp+":"+opID, 2*time.Minute, func(d any) bool {
		p := d.(OpProgress)
		lines = append(lines, p.Lines...)
		return p.Done
	}).(OpProgress)
	if done.Error != "" || !strings.Contains(strings.Join(lines, "\n"), "[2/3] COPY hello.sh /hello.sh") {
		t.Fatalf("build: %+v\n%s", done, strings.Join(lines, "\n"))
	}
	rec.wait(t, EventImages, 10*time.Second, func(d any) bool { return hasTag(d, "desk/built:1") })
	if out := testkit.NewDocker(t, a.Host).Must("run", "--rm", "desk/built:1"); out != "Hello, World!\n" {
		t.Fatalf("the built image said %q", out)
	}

	// A broken Dockerfile fails with the engine's message, naming the step.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nRUN exit 3\n"), 0o644)
	opID, _ = b.Images().Build(dir, "desk/broken:1")
	done = rec.wait(t, EventOp+":"+opID, 2*time.Minute, func(d any) bool { return d.(OpProgress).Done }).(OpProgress)
	if done.Error == "" {
		t.Fatal("a failing RUN built")
	}
}
