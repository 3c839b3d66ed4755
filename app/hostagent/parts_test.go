package hostagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/transport"
)

func TestPublishedPorts(t *testing.T) {
	port := func(s string) network.Port { p, _ := network.ParsePort(s); return p }
	any4, any6, lo2 := netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::"), netip.MustParseAddr("127.0.0.2")
	c := container.InspectResponse{ID: "c1", State: &container.State{Running: true},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{
			port("80/tcp"):   {{HostPort: "18080"}},
			port("443/tcp"):  {{HostIP: any4, HostPort: "18443"}},
			port("53/udp"):   {{HostIP: lo2, HostPort: "5353"}},
			port("9000/tcp"): {{}},
		}},
		NetworkSettings: &container.NetworkSettings{Ports: network.PortMap{
			port("80/tcp"):   {{HostIP: any4, HostPort: "18080"}, {HostIP: any6, HostPort: "18080"}},
			port("443/tcp"):  {{HostIP: any4, HostPort: "18443"}},
			port("53/udp"):   {{HostIP: lo2, HostPort: "5353"}},
			port("9000/tcp"): {{HostIP: any4, HostPort: "32768"}}, // an ephemeral port
			port("7/tcp"):    nil,                                 // exposed, not published
		}}}
	got := publishedPorts(c)
	want := map[hostapi.ForwardedPort]string{
		{Container: "c1", Proto: "tcp", HostIP: "127.0.0.1", HostPort: 18080, GuestPort: 18080}: "127.0.0.1:18080",
		{Container: "c1", Proto: "tcp", HostIP: "0.0.0.0", HostPort: 18443, GuestPort: 18443}:   "127.0.0.1:18443",
		{Container: "c1", Proto: "udp", HostIP: "127.0.0.2", HostPort: 5353, GuestPort: 5353}:   "127.0.0.2:5353",
		{Container: "c1", Proto: "tcp", HostIP: "127.0.0.1", HostPort: 32768, GuestPort: 32768}: "127.0.0.1:32768",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for fp, addr := range want {
		if got[fp] != addr {
			t.Errorf("%+v: got %q, want %q (all: %v)", fp, got[fp], addr, got)
		}
	}
	c.State.Running = false
	if len(publishedPorts(c)) != 0 {
		t.Error("a stopped container's ports are forwarded")
	}
}

// freePort returns a port nothing listens on.
func freePort(t *testing.T, network string) int {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPortForwarder forwards host ports to "guest" servers reached through
// the real dial service.
func TestPortForwarder(t *testing.T) {
	netAddr := serveUnix(t, "net.sock", func(l net.Listener) { transport.ServeNet(l, nil) })
	g := guestDialer(netAddr)

	tcpSrv, _ := net.Listen("tcp", "127.0.0.1:0")
	defer tcpSrv.Close()
	go func() {
		for {
			c, err := tcpSrv.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	udpSrv, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer udpSrv.Close()
	go func() {
		b := make([]byte, 2048)
		for {
			n, from, err := udpSrv.ReadFrom(b)
			if err != nil {
				return
			}
			udpSrv.WriteTo(append([]byte("re:"), b[:n]...), from)
		}
	}()

	changes := make(chan struct{}, 10)
	p := newPortForwarder(g, slog.New(slog.DiscardHandler), func() { changes <- struct{}{} })
	defer p.close()
	tp, up := freePort(t, "tcp"), freePort(t, "udp")
	tfp := hostapi.ForwardedPort{Container: "c", Proto: "tcp", HostIP: "127.0.0.1", HostPort: tp, GuestPort: tp}
	ufp := hostapi.ForwardedPort{Container: "c", Proto: "udp", HostIP: "127.0.0.1", HostPort: up, GuestPort: up}
	p.apply(map[hostapi.ForwardedPort]string{tfp: tcpSrv.Addr().String(), ufp: udpSrv.LocalAddr().String()})
	if l := p.list(); len(l) != 2 {
		t.Fatalf("forwards %v", l)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notice")
	}

	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tp))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	if b, _ := io.ReadAll(c); string(b) != "hello" {
		t.Fatalf("tcp through the forward: %q", b)
	}
	c.Close()

	uc, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(up))
	if err != nil {
		t.Fatal(err)
	}
	uc.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for _, m := range []string{"a", "bb"} {
		uc.Write([]byte(m))
		n, err := uc.Read(buf)
		if err != nil || string(buf[:n]) != "re:"+m {
			t.Fatalf("udp through the forward: %q %v", buf[:n], err)
		}
	}
	uc.Close()

	// The port goes away with its container; the host port is free again.
	p.apply(map[hostapi.ForwardedPort]string{ufp: udpSrv.LocalAddr().String()})
	if _, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tp)); err == nil {
		t.Fatal("tcp forward still listening")
	}
	// A host port that is taken is reported and skipped, not fatal.
	taken, _ := net.Listen("tcp", "127.0.0.1:0")
	defer taken.Close()
	tk := taken.Addr().(*net.TCPAddr).Port
	p.apply(map[hostapi.ForwardedPort]string{ufp: udpSrv.LocalAddr().String(),
		{Container: "d", Proto: "tcp", HostIP: "127.0.0.1", HostPort: tk, GuestPort: tk}: tcpSrv.Addr().String()})
	if l := p.list(); len(l) != 1 || l[0] != ufp {
		t.Fatalf("after a taken port: %v", l)
	}
}

type guestDialer string

func (g guestDialer) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	return transport.Dial(ctx, string(g))
}

func TestSettingsAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ctxT(t, time.Minute)
	r, err := e.api.Settings(ctx)
	if err != nil || r.Settings.MemoryMiB != config.Defaults().MemoryMiB || r.Limits.MaxCPUs < 1 || r.RestartRequired {
		t.Fatalf("settings: %+v %v", r, err)
	}
	bad := r.Settings
	bad.CPUs, bad.DiskGiB = 0, 1
	_, err = e.api.SaveSettings(ctx, bad)
	var ae *hostapi.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Fields) != 2 {
		t.Fatalf("invalid settings: %v", err)
	}
	if _, err := e.api.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s := r.Settings
	s.CPUs = 1
	s.MemoryMiB = 1024
	r2, err := e.api.SaveSettings(ctx, s)
	if err != nil || !r2.RestartRequired || r2.Settings.MemoryMiB != 1024 {
		t.Fatalf("saved: %+v %v", r2, err)
	}
	if st, _ := e.api.Status(ctx); st.MemoryMiB == 1024 {
		t.Fatal("the running machine's status shows settings it was not booted with")
	}
	if st, err := e.api.Restart(ctx); err != nil || st.MemoryMiB != 1024 || st.CPUs != 1 {
		t.Fatalf("after restart: %+v %v", st, err)
	}
	if r3, _ := e.api.Settings(ctx); r3.RestartRequired {
		t.Fatal("restart still required after the restart")
	}
}

func TestLogsTailFollowAndFilter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	os.WriteFile(path, []byte("[ 0.1] kernel says\ntime=1 level=INFO msg=one\n[ 0.2] more\ntime=2 level=INFO msg=two\npartial"), 0o600)
	var b bytes.Buffer
	if err := TailLog(context.Background(), &b, path, true, 1, false); err != nil || b.String() != "time=2 level=INFO msg=two\n" {
		t.Fatalf("agent tail 1: %q %v", b.String(), err)
	}
	b.Reset()
	TailLog(context.Background(), &b, path, false, -1, false)
	if !strings.HasPrefix(b.String(), "[ 0.1] kernel says") || !strings.HasSuffix(b.String(), "partial") {
		t.Fatalf("all: %q", b.String())
	}

	// Follow: the partial line once it ends, new lines, then a rotation.
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { TailLog(ctx, pw, path, false, 0, true); pw.Close() }()
	lines := make(chan string, 10)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			if err != nil {
				close(lines)
				return
			}
			lines <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("followed %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line %q", want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(" line ends\n")
	f.Close()
	next("partial line ends\n")
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte("after rotation\n"), 0o600)
	next("after rotation\n")
}

func TestLogsAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	os.MkdirAll(e.paths.MachineDir(), 0o700)
	os.WriteFile(filepath.Join(e.paths.MachineDir(), "console.log"), []byte("[0.1] k\ntime=x msg=agent\n"), 0o600)
	rc, err := e.api.Logs(ctxT(t, 10*time.Second), "agent", 10, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "time=x msg=agent\n" {
		t.Fatalf("agent log %q", b)
	}
	if _, err := e.api.Logs(context.Background(), "kernel", 10, false); err == nil {
		t.Fatal("unknown source accepted")
	}
	if _, err := e.api.Logs(context.Background(), "hostd", 10, false); err == nil {
		t.Fatal("a log that does not exist answered") // the test's hostd logs to the test, not the file
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "hostd.lock")
	release, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	release()
	release2, err := Lock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release2()
}

// TestDockerContext checks the context with the stock docker CLI: it
// lists it, reaches the engine through it, and the current context only
// changes when asked.
func TestDockerContext(t *testing.T) {
	e := newEnv(t, envOptions{boot: true})
	e.waitState(hostapi.Running, time.Minute)
	cfgDir := e.a.o.DockerConfig
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths": {"reg.example": {"auth": "eDp5"}}}`), 0o600)
	d := testkit.NewDocker(t, "")
	d.ConfigDir = cfgDir
	name := ContextName(e.paths)
	if out := d.Must("context", "ls", "--format", "{{.Name}} {{.DockerEndpoint}}"); !strings.Contains(out, name+" "+e.paths.DockerHost()) {
		t.Fatalf("context ls: %s", out)
	}
	if got := strings.TrimSpace(d.Must("--context", name, "version", "--format", "{{.Server.Os}}")); got != "linux" {
		t.Fatalf("through the context: %q", got)
	}
	if cur, _ := CurrentDockerContext(cfgDir); cur != "" {
		t.Fatalf("current context changed to %q unasked", cur)
	}
	if err := UseDockerContext(cfgDir, name); err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(d.Must("context", "show")); out != name {
		t.Fatalf("context show %q", out)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(cfgDir, "config.json"))
	if json.Unmarshal(b, &cfg) != nil || cfg["auths"] == nil {
		t.Fatalf("config.json lost its other settings: %s", b)
	}
	if err := RemoveDockerContext(cfgDir, name); err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(d.Must("context", "show")); out != "default" {
		t.Fatalf("after removal: %q", out)
	}
}

func TestClockJump(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := clockReading{wall: t0, mono: 10 * time.Second}
	// Five seconds pass on both clocks: no jump.
	if j := clockJump(prev, clockReading{wall: t0.Add(5 * time.Second), mono: 15 * time.Second}); j != 0 {
		t.Fatalf("jump %v", j)
	}
	// The host slept an hour: the wall clock moved, the monotonic did not.
	if j := clockJump(prev, clockReading{wall: t0.Add(time.Hour + 5*time.Second), mono: 15 * time.Second}); j != time.Hour {
		t.Fatalf("sleep: jump %v", j)
	}
	// The clock was set back.
	if j := clockJump(prev, clockReading{wall: t0.Add(-time.Minute), mono: 15 * time.Second}); j != time.Minute+5*time.Second {
		t.Fatalf("set back: jump %v", j)
	}
}

func TestSyncClockAndShellThroughHostd(t *testing.T) {
	e := newEnv(t, envOptions{boot: true})
	e.waitState(hostapi.Running, time.Minute)
	// Boot sets no clock with the fake; syncClock does, through the
	// control API.
	e.a.syncClock(context.Background())
	if e.guest.timesSet() != 1 {
		t.Fatalf("guest clock set %d times", e.guest.timesSet())
	}

	ctx := ctxT(t, 30*time.Second)
	conn, id, err := e.api.Shell(ctx, control.ShellOptions{Rows: 20, Cols: 70})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, "stty size\n")
	readUntil(t, conn, "20 70")
	if err := e.api.ResizeShell(ctx, id, 33, 99); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "stty size; exit 5\n")
	readUntil(t, conn, "33 99")
	io.ReadAll(conn)
	if code, err := e.api.ShellExitCode(ctx, id); err != nil || code != 5 {
		t.Fatalf("shell exit code %d, %v", code, err)
	}

	// No machine, no shell: a clear error.
	e.api.Stop(ctx, false)
	if _, _, err := e.api.Shell(ctx, control.ShellOptions{}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("shell while stopped: %v", err)
	}
}

func readUntil(t *testing.T, r io.Reader, want string) {
	t.Helper()
	var got []byte
	b := make([]byte, 1)
	for !bytes.Contains(got, []byte(want)) {
		if _, err := r.Read(b); err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, got)
		}
		got = append(got, b[0])
	}
}
