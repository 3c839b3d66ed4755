package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// laneSetup is a host SerialMux and a guest GuestMux with n lanes, each a
// socket pair standing in for a virtio-serial port and QEMU's chardev.
func laneSetup(t *testing.T, n int) (*SerialMux, *GuestLanes) {
	t.Helper()
	f := newFakeChardev(t)
	guestEnds := map[int]*os.File{}
	var hostEnds []net.Conn
	for i := 0; i < n; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		guestEnds[i] = os.NewFile(uintptr(fds[0]), "lane-guest")
		hf := os.NewFile(uintptr(fds[1]), "lane-host")
		hc, err := net.FileConn(hf)
		hf.Close()
		if err != nil {
			t.Fatal(err)
		}
		hostEnds = append(hostEnds, hc)
	}
	lanes := NewGuestLanes(guestEnds)
	svc := &NetService{Lanes: lanes}
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortNet: svc.ServeConn}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.ServeSerial(ctx, f.open) }()
	m := NewSerialMux(f.path, nil)
	m.LanePaths = make([]string, n)
	m.dialLane = func(i int) (net.Conn, error) { return hostEnds[i], nil }
	t.Cleanup(func() { m.Close(); cancel(); <-done })
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := m.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	return m, lanes
}

// tcpServer serves each connection with f.
func tcpServer(t *testing.T, f func(c net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
			go func() { f(c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

func freeLanes(m *SerialMux) int {
	m.mu.Lock()
	p := m.lanes
	m.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

func waitFreeLanes(t *testing.T, m *SerialMux, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for freeLanes(m) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d lanes free, want %d", freeLanes(m), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLaneDownload: a download goes on a lane, whole, and the lane comes
// back for the next connection.
func TestLaneDownload(t *testing.T) {
	m, _ := laneSetup(t, 2)
	data := pattern(8<<20 + 123)
	addr := tcpServer(t, func(c net.Conn) { c.Write(data) })
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := DialNet(ctx, m, "tcp", addr)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.(*laneConn); !ok {
			t.Fatalf("download %d: not on a lane (%T)", i, c)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("download %d: %d bytes, %v", i, len(got), err)
		}
		waitFreeLanes(t, m, 2)
	}
}

// TestLaneUploadAndHalfClose: what the host sends reaches the guest's peer
// (in frames), a half-close crosses, and the answer comes back on the lane.
func TestLaneUploadAndHalfClose(t *testing.T) {
	m, _ := laneSetup(t, 1)
	addr := tcpServer(t, func(c net.Conn) {
		b, _ := io.ReadAll(c) // until the host's half-close
		c.Write(append([]byte("got "), b...))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := DialNet(ctx, m, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("upload "), 300000) // over a frame's megabyte
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.(closeWriter).CloseWrite()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, append([]byte("got "), msg...)) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
}

// TestLaneAbort: a host that stops reading mid-download (its client went
// away) stops the guest's side too; the lane is read clean and serves the
// next download intact.
func TestLaneAbort(t *testing.T) {
	m, _ := laneSetup(t, 1)
	chunk := pattern(64 << 10)
	endless := tcpServer(t, func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := DialNet(ctx, m, "tcp", endless)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFreeLanes(t, m, 1)

	data := pattern(2 << 20)
	addr := tcpServer(t, func(c net.Conn) { c.Write(data) })
	c2, err := DialNet(ctx, m, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, ok := c2.(*laneConn); !ok {
		t.Fatal("the next download did not get the lane")
	}
	c2.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c2)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after an abort: %d bytes, %v", len(got), err)
	}
}

// TestLaneFallback: with every lane lent, a connection goes through the
// multiplexer as before.
func TestLaneFallback(t *testing.T) {
	m, _ := laneSetup(t, 1)
	var mu sync.Mutex
	release := make(chan struct{})
	hold := tcpServer(t, func(c net.Conn) { <-release })
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	busy, err := DialNet(ctx, m, "tcp", hold)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	mu.Lock()
	defer mu.Unlock()
	data := pattern(1 << 20)
	addr := tcpServer(t, func(c net.Conn) { c.Write(data) })
	c, err := DialNet(ctx, m, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*laneConn); ok {
		t.Fatal("got a lane while none was free")
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("through the mux: %d bytes, %v", len(got), err)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i>>12) ^ byte(i)
	}
	return b
}
