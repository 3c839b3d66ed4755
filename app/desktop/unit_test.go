package desktop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-dev/berth/app/config"
)

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		`sh -c 'echo "hi there"'`: {"sh", "-c", `echo "hi there"`},
		`httpd -f -p 80`:          {"httpd", "-f", "-p", "80"},
		`a\ b "c d" ''`:           {"a b", "c d", ""},
		`  `:                      nil,
	} {
		got, err := splitWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`echo "open`, `x \`} {
		if _, err := splitWords(in); err == nil {
			t.Errorf("splitWords(%q): want an error", in)
		}
	}
}

func TestRunRequestSpec(t *testing.T) {
	cfg, hc, name, fields := RunRequest{Image: "busybox", Name: "web", Ports: []string{"8080:80", "127.0.0.1:9000:90/udp", "443", ""},
		Env: []string{"A=1", "B="}, Volumes: []string{"data:/data", "/srv:/srv:ro"}, Command: "httpd -f -p 80", Restart: "on-failure:3"}.spec()
	if len(fields) > 0 {
		t.Fatalf("fields: %v", fields)
	}
	if name != "web" || cfg.Image != "busybox" || !reflect.DeepEqual(cfg.Cmd, []string{"httpd", "-f", "-p", "80"}) ||
		!reflect.DeepEqual(cfg.Env, []string{"A=1", "B="}) || len(hc.Binds) != 2 {
		t.Fatalf("spec: %q %+v %+v", name, cfg, hc)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyOnFailure || hc.RestartPolicy.MaximumRetryCount != 3 {
		t.Fatalf("restart: %+v", hc.RestartPolicy)
	}
	b, _ := json.Marshal(hc.PortBindings)
	for _, want := range []string{`"80/tcp":[{"HostIp":"","HostPort":"8080"}]`, `"90/udp":[{"HostIp":"127.0.0.1","HostPort":"9000"}]`, `"443/tcp":[{"HostIp":"","HostPort":""}]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("port bindings %s lack %s", b, want)
		}
	}

	_, _, _, fields = RunRequest{Image: "Bad Image", Name: "-x", Ports: []string{"99999:80", "80/icmp"}, Env: []string{"NOVALUE"},
		Volumes: []string{"data"}, Command: `echo "x`, Restart: "sometimes", AutoRemove: true}.spec()
	got := map[string]int{}
	for _, f := range fields {
		got[f.Field]++
		if f.Message == "" {
			t.Errorf("field %s without a message", f.Field)
		}
	}
	want := map[string]int{"image": 1, "name": 1, "ports": 2, "env": 1, "volumes": 1, "command": 1, "restart": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("field errors %v, want %v (%v)", got, want, fields)
	}
}

func TestContainerFromSummaryPorts(t *testing.T) {
	s := container.Summary{ID: "abc", Names: []string{"/web"}, State: "running", Ports: []container.PortSummary{
		{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
		{IP: netip.MustParseAddr("::"), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
		{IP: netip.MustParseAddr("10.1.2.3"), PrivatePort: 53, PublicPort: 5353, Type: "udp"},
		{IP: netip.MustParseAddr("192.168.1.5"), PrivatePort: 22, PublicPort: 2222, Type: "tcp"},
		{PrivatePort: 9000, Type: "tcp"},
	}}
	c := containerFromSummary(s)
	if c.Name != "web" || len(c.Ports) != 4 {
		t.Fatalf("got %+v", c)
	}
	urls := map[int]string{}
	for _, p := range c.Ports {
		urls[p.ContainerPort] = p.URL
	}
	want := map[int]string{22: "http://192.168.1.5:2222", 53: "", 80: "http://localhost:8080", 9000: ""}
	if !reflect.DeepEqual(urls, want) {
		t.Fatalf("urls %v, want %v", urls, want)
	}
}

func TestStatsSample(t *testing.T) {
	s := &container.StatsResponse{Read: time.Unix(100, 0)}
	s.CPUStats.CPUUsage.TotalUsage, s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs = 300, 2000, 2
	s.PreCPUStats.CPUUsage.TotalUsage, s.PreCPUStats.SystemUsage = 100, 1000
	s.MemoryStats.Usage, s.MemoryStats.Limit = 100<<20, 512<<20
	s.MemoryStats.Stats = map[string]uint64{"total_inactive_file": 40 << 20}
	s.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 10, TxBytes: 20}, "eth1": {RxBytes: 1, TxBytes: 2}}
	got := statsSample(s, nil)
	if got.CPUPercent != 40 || got.MemBytes != 60<<20 || got.MemLimit != 512<<20 || got.NetRx != 11 || got.NetTx != 22 {
		t.Fatalf("%+v", got)
	}
}

type recorder struct {
	mu     sync.Mutex
	events []recorded
	cond   *sync.Cond
}

type recorded struct {
	name string
	data any
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) Emit(name string, data any) {
	r.mu.Lock()
	r.events = append(r.events, recorded{name, data})
	r.mu.Unlock()
	r.cond.Broadcast()
}

// mark is the position of the next event, for waitAfter.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// wait returns the first event named name for which ok holds, failing
// the test after d.
func (r *recorder) wait(t *testing.T, name string, d time.Duration, ok func(any) bool) any {
	t.Helper()
	return r.waitAfter(t, 0, name, d, ok)
}

// waitAfter is wait among the events from position from on.
func (r *recorder) waitAfter(t *testing.T, from int, name string, d time.Duration, ok func(any) bool) any {
	t.Helper()
	deadline := time.Now().Add(d)
	go func() { time.Sleep(d); r.cond.Broadcast() }()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := from
	for {
		for ; seen < len(r.events); seen++ {
			if e := r.events[seen]; e.name == name && ok(e.data) {
				return e.data
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, e := range r.events[from:] {
				if ms, ok := e.data.(MachineStatus); ok {
					names = append(names, fmt.Sprintf("machine(%s hostd=%v answering=%v)", ms.Status.State, ms.Hostd, ms.Engine.Answering))
					continue
				}
				names = append(names, e.name)
			}
			t.Fatalf("no matching %q event within %v (saw %v)", name, d, names)
		}
		r.cond.Wait()
	}
}

func TestLineBatcher(t *testing.T) {
	rec := newRecorder()
	lb := newLineBatcher(func(c LogChunk) { rec.Emit("logs", c) })
	io.WriteString(lb.writer("stdout"), "one\ntw")
	io.WriteString(lb.writer("stderr"), "err\r\n")
	io.WriteString(lb.writer("stdout"), "o\nthree")
	lb.close(LogChunk{Done: true})
	var lines []string
	rec.mu.Lock()
	for _, e := range rec.events {
		for _, l := range e.data.(LogChunk).Lines {
			lines = append(lines, l.Stream+":"+l.Text)
		}
	}
	last := rec.events[len(rec.events)-1].data.(LogChunk)
	rec.mu.Unlock()
	want := []string{"stdout:one", "stderr:err", "stdout:two", "stdout:three"}
	if !reflect.DeepEqual(lines, want) || !last.Done {
		t.Fatalf("lines %q (done %v), want %q", lines, last.Done, want)
	}
}

func TestOpProgressPull(t *testing.T) {
	rec := newRecorder()
	b := &Backend{emit: rec}
	o := b.newOp("1", "pull", "busybox")
	for _, m := range []jsonstream.Message{
		{ID: "latest", Status: "Pulling from library/busybox"},
		{ID: "aaa", Status: "Pulling fs layer"},
		{ID: "bbb", Status: "Pulling fs layer"},
		{ID: "aaa", Status: "Downloading", Progress: &jsonstream.Progress{Current: 50, Total: 100}},
		{ID: "bbb", Status: "Already exists"},
		{ID: "aaa", Status: "Pull complete"},
		{Status: "Digest: sha256:1234"},
	} {
		o.message(m)
	}
	final := o.finish(nil)
	if len(final.Layers) != 2 || final.Layers[0].ID != "aaa" || final.Layers[0].Status != "Pull complete" ||
		final.Layers[0].Current != 100 || final.Layers[1].Status != "Already exists" || final.Status != "Digest: sha256:1234" || !final.Done {
		t.Fatalf("%+v", final)
	}
	last := rec.wait(t, "op:1", time.Second, func(d any) bool { return d.(OpProgress).Done }).(OpProgress)
	if len(last.Layers) != 2 {
		t.Fatalf("last event %+v", last)
	}
}

// newOffline is a backend with nothing running: no engine, no hostd.
func newOffline(t *testing.T) (*Backend, *recorder) {
	t.Helper()
	home := t.TempDir()
	rec := newRecorder()
	b, err := New(Options{Paths: config.Paths{Home: home}, DockerHost: "unix://" + filepath.Join(home, "none.sock"), Emitter: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, rec
}

func TestOfflineMachineAndErrors(t *testing.T) {
	b, rec := newOffline(t)
	m := &Machine{b}
	st := m.Status()
	if st.Status.State != "stopped" || st.Hostd || st.Engine.Answering {
		t.Fatalf("status %+v", st)
	}
	rec.wait(t, EventMachine, time.Second, func(any) bool { return true })
	_, err := (&Containers{b}).List()
	if err == nil || !strings.Contains(err.Error(), "the engine is not running") {
		t.Fatalf("list without an engine: %v", err)
	}
	if _, err := (&Machine{b}).Stop(); err == nil {
		t.Fatal("stop with no hostd: want an error")
	}
	b.berthBin = "/nonexistent/berth"
	if _, err := m.Start(); err == nil || !strings.Contains(err.Error(), "/nonexistent/berth") {
		t.Fatalf("start with a missing berth binary: %v", err)
	}
	if got := b.machineSnapshot().Status; got.State != "error" || got.Error == "" {
		t.Fatalf("after a failed start: %+v", got)
	}
}

func TestSettingsWithoutHostd(t *testing.T) {
	b, _ := newOffline(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	s := &Settings{b}
	v, err := s.Get()
	if err != nil || v.Hostd || v.Settings.CPUs < 1 || v.Limits.MaxCPUs < 1 {
		t.Fatalf("get: %+v %v", v, err)
	}
	bad := v.Settings
	bad.CPUs, bad.MemoryMiB, bad.InsecureRegistries = 0, 100, []string{"http://x"}
	res, err := s.Save(bad)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, f := range res.Fields {
		fields[f.Field] = true
	}
	if !fields["cpus"] || !fields["memoryMiB"] || !fields["insecureRegistries"] {
		t.Fatalf("field errors %v", res.Fields)
	}
	if _, err := os.Stat(b.paths.ConfigFile()); !os.IsNotExist(err) {
		t.Fatal("an invalid save wrote the settings file")
	}
	good := v.Settings
	good.CPUs, good.MemoryMiB, good.StartAtLogin = 1, 1024, true
	good.RegistryMirrors = []string{"https://mirror.example"}
	res, err = s.Save(good)
	if err != nil || len(res.Fields) > 0 {
		t.Fatalf("save: %+v %v", res, err)
	}
	again, _ := s.Get()
	if again.Settings.MemoryMiB != 1024 || again.Settings.RegistryMirrors[0] != "https://mirror.example" {
		t.Fatalf("reloaded %+v", again.Settings)
	}
	entry, err := os.ReadFile(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", "berth.desktop"))
	if err != nil || !strings.Contains(string(entry), "--hidden") {
		t.Fatalf("autostart entry: %q %v", entry, err)
	}
	if res, err = s.Reset(); err != nil || res.View.Settings.MemoryMiB != config.Defaults().MemoryMiB {
		t.Fatalf("reset: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", "berth.desktop")); !os.IsNotExist(err) {
		t.Fatal("reset left the autostart entry")
	}
}

func TestTroubleshootLogsFromFiles(t *testing.T) {
	b, _ := newOffline(t)
	tr := &Troubleshoot{b}
	if _, err := tr.Logs("../../etc/passwd", 10); err == nil {
		t.Fatal("an unknown source: want an error")
	}
	if _, err := tr.Logs("agent", 10); err == nil || !strings.Contains(err.Error(), "agent.log") {
		t.Fatalf("missing log: %v", err)
	}
	os.MkdirAll(b.paths.LogsDir(), 0o700)
	var sb strings.Builder
	for i := 0; i < 50; i++ {
		sb.WriteString("line " + strings.Repeat("x", i%3) + "\n")
	}
	sb.WriteString("last line\n")
	os.WriteFile(filepath.Join(b.paths.LogsDir(), "agent.log"), []byte(sb.String()), 0o600)
	out, err := tr.Logs("agent", 3)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.HasSuffix(out, "last line\n") {
		t.Fatalf("tail: %q %v", out, err)
	}
	d := tr.Diagnostics()
	if d.Hostd || d.Engine != "not answering" || d.Home != b.paths.Home {
		t.Fatalf("%+v", d)
	}
}
