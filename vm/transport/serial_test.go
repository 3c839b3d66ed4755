package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeChardev stands in for QEMU's virtio-serial plumbing: a unix socket
// the host connects to, relayed byte for byte to whichever guest end is
// open. As in QEMU, bytes with no one on the other side are dropped, a host
// that disconnects makes the guest's reads end, and a guest that closes its
// port leaves the host connection open.
type fakeChardev struct {
	path string
	l    net.Listener

	mu    sync.Mutex
	host  net.Conn
	guest net.Conn
}

func newFakeChardev(t *testing.T) *fakeChardev {
	f := &fakeChardev{path: filepath.Join(t.TempDir(), "agent.sock")}
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.l = l
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		if f.host != nil {
			f.host.Close()
		}
		if f.guest != nil {
			f.guest.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			for f.host != nil { // QEMU's chardev serves one client at a time
				f.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				f.mu.Lock()
			}
			f.host = c
			f.mu.Unlock()
			go f.relay(c, func() net.Conn { f.mu.Lock(); defer f.mu.Unlock(); return f.guest })
		}
	}()
	return f
}

func (f *fakeChardev) relay(src net.Conn, dst func() net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := dst(); d != nil {
				d.Write(buf[:n])
			}
		}
		if err != nil {
			f.mu.Lock()
			if f.host == src {
				f.host = nil
				if f.guest != nil { // the guest sees the host go away
					f.guest.Close()
					f.guest = nil
				}
			}
			if f.guest == src {
				f.guest = nil
			}
			f.mu.Unlock()
			return
		}
	}
}

// open is the guest's "open /dev/vportNpM".
func (f *fakeChardev) open() (io.ReadWriteCloser, error) {
	g, q := net.Pipe()
	f.mu.Lock()
	if f.guest != nil {
		f.guest.Close()
	}
	f.guest = q
	f.mu.Unlock()
	go f.relay(q, func() net.Conn { f.mu.Lock(); defer f.mu.Unlock(); return f.host })
	return g, nil
}

// echoServer serves unix://… echoing lines until the client half-closes.
func echoServer(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "echo.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return "unix://" + p
}

func startGuest(t *testing.T, f *fakeChardev, routes Routes) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g := &GuestMux{Routes: routes}
	go func() {
		defer close(done)
		g.ServeSerial(ctx, f.open)
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func roundTrip(t *testing.T, m *SerialMux, port uint32, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.DialGuest(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	// Half-close: the echo server sees EOF, finishes, and we read it all.
	if err := c.(closeWriter).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(msg))
	}
}

func TestSerialMuxRoundTrip(t *testing.T) {
	f := newFakeChardev(t)
	startGuest(t, f, Routes{PortEngine: echoServer(t)})
	m := NewSerialMux(f.path, nil)
	defer m.Close()

	roundTrip(t, m, PortEngine, "hello\n")
	// Many streams at once on one session, with more than a window of data.
	big := strings.Repeat("0123456789abcdef", 600<<10/16)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			roundTrip(t, m, PortEngine, big)
		}()
	}
	wg.Wait()
}

func TestSerialMuxRefusedPort(t *testing.T) {
	f := newFakeChardev(t)
	startGuest(t, f, Routes{PortEngine: echoServer(t), PortControl: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	m := NewSerialMux(f.path, nil)
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.DialGuest(ctx, 9999); err == nil || !strings.Contains(err.Error(), "no service on guest port 9999") {
		t.Fatalf("unknown port: %v", err)
	}
	if _, err := m.DialGuest(ctx, PortControl); err == nil || !strings.Contains(err.Error(), "guest port 1024") {
		t.Fatalf("dead service: %v", err)
	}
	roundTrip(t, m, PortEngine, "still fine\n") // the session survives refusals
}

func TestSerialMuxWaitsForGuest(t *testing.T) {
	f := newFakeChardev(t)
	m := NewSerialMux(f.path, nil)
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := m.DialGuest(ctx, PortEngine)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "guest agent") {
		t.Fatalf("no guest: %v", err)
	}
	// The guest comes up later; the next dial finds it.
	startGuest(t, f, Routes{PortEngine: echoServer(t)})
	roundTrip(t, m, PortEngine, "late\n")
}

func TestSerialMuxGuestReboot(t *testing.T) {
	f := newFakeChardev(t)
	echo := echoServer(t)
	stop := startGuest(t, f, Routes{PortEngine: echo})
	m := NewSerialMux(f.path, nil)
	defer m.Close()
	roundTrip(t, m, PortEngine, "before\n")

	// A stream open across the reboot ends with an error, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open, err := m.DialGuest(ctx, PortEngine)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	startGuest(t, f, Routes{PortEngine: echo})
	roundTrip(t, m, PortEngine, "after\n")
	open.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(open).ReadByte(); err == nil {
		t.Fatal("read on a stream of the old session succeeded")
	}
}

func TestSerialMuxHostReconnect(t *testing.T) {
	f := newFakeChardev(t)
	startGuest(t, f, Routes{PortEngine: echoServer(t)})
	m := NewSerialMux(f.path, nil)
	roundTrip(t, m, PortEngine, "first host\n")
	m.Close()

	// A new host process (hostd restarted) connects to the same chardev.
	m2 := NewSerialMux(f.path, nil)
	defer m2.Close()
	roundTrip(t, m2, PortEngine, "second host\n")
	m2.Reset()
	roundTrip(t, m2, PortEngine, "after reset\n")
}

func TestReadTokenSkipsNoise(t *testing.T) {
	in := "\x00\x01garbageBERTH-HELLO abc\nBERTH-\n" + strings.Repeat("x", 70<<10) + "\nzzBERTH-START abc\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
	for _, want := range [][2]string{{tokHello, "abc"}, {"BERTH-", ""}, {tokStart, "abc"}} {
		tok, arg, err := readToken(br)
		if err != nil || tok != want[0] || arg != want[1] {
			t.Fatalf("got %q %q %v, want %q", tok, arg, err, want)
		}
	}
	if _, _, err := readToken(br); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// TestSerialMuxInProcessDialService runs the dial service as a GuestMux
// handler, as PID 1 does, and reaches a TCP server through it.
func TestSerialMuxInProcessDialService(t *testing.T) {
	f := newFakeChardev(t)
	ctx, cancel := context.WithCancel(context.Background())
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortNet: func(c net.Conn) { ServeNetConn(c, nil) }}}
	done := make(chan struct{})
	go func() { defer close(done); g.ServeSerial(ctx, f.open) }()
	t.Cleanup(func() { cancel(); <-done })
	m := NewSerialMux(f.path, nil)
	defer m.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := DialNet(dctx, m, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "through the mux")
	c.(closeWriter).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "through the mux" {
		t.Fatalf("got %q, %v", got, err)
	}
}
