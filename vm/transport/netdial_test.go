package transport

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netService serves the dial service on a unix socket and returns a
// GuestDialer that reaches it as guest port PortNet, as GuestMux does.
func netService(t *testing.T) GuestDialer {
	sock := filepath.Join(t.TempDir(), "net.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go ServeNet(l, nil)
	return dialerFunc(func(ctx context.Context, port uint32) (net.Conn, error) {
		if port != PortNet {
			t.Errorf("dialed guest port %d", port)
		}
		return Dial(ctx, "unix://"+sock)
	})
}

type dialerFunc func(ctx context.Context, port uint32) (net.Conn, error)

func (f dialerFunc) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	return f(ctx, port)
}

func TestDialNetTCP(t *testing.T) {
	g := netService(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				// Echo until the client half-closes, then say goodbye: the
				// half-close must cross the relay.
				io.Copy(c, c)
				c.Write([]byte("bye"))
				c.Close()
			}()
		}
	}()
	c, err := DialNet(context.Background(), g, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping "))
	c.(interface{ CloseWrite() error }).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ping bye" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestDialNetUDPKeepsDatagrams(t *testing.T) {
	g := netService(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()
	c, err := DialNet(context.Background(), g, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two datagrams written back to back come back as two.
	c.Write([]byte("one"))
	c.Write([]byte("two"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for _, want := range []string{"ONE", "TWO"} {
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	// A datagram longer than the buffer is truncated, and the next one is
	// still whole.
	c.Write([]byte("abcdefgh"))
	c.Write([]byte("x"))
	small := make([]byte, 3)
	if n, err := c.Read(small); err != nil || string(small[:n]) != "ABC" {
		t.Fatalf("truncated read %q, %v", small[:n], err)
	}
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "X" {
		t.Fatalf("after truncation %q, %v", buf[:n], err)
	}
}

func TestDialNetErrors(t *testing.T) {
	g := netService(t)
	// Nothing listens there: the guest's refusal comes back as the error.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := DialNet(context.Background(), g, "tcp", addr)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial to a closed port: %v", err)
	}
	for _, bad := range [][2]string{{"unix", "/run/x.sock"}, {"tcp", "a b"}, {"tcp", "x\nudp y"}} {
		if _, err := DialNet(context.Background(), g, bad[0], bad[1]); err == nil {
			t.Errorf("%s %q accepted", bad[0], bad[1])
		}
	}
	// A raw client sending garbage gets a refusal, not a hang.
	c, err := g.DialGuest(context.Background(), PortNet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("sctp 1.2.3.4:5\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readStatus(c); err == nil || !strings.Contains(err.Error(), "want tcp or udp") {
		t.Fatalf("garbage request: %v", err)
	}
}

func TestUDPRelayIdleButOneWayBusy(t *testing.T) {
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	done := make(chan struct{})
	go func() { relayDatagramsIdle(a2, b1, 200*time.Millisecond); close(done) }()
	// Traffic only from a to b keeps the relay alive past the idle time.
	go io.Copy(io.Discard, b2)
	for i := 0; i < 6; i++ {
		if _, err := a1.Write([]byte("x")); err != nil {
			t.Fatalf("relay ended while one direction was busy: %v", err)
		}
		time.Sleep(80 * time.Millisecond)
	}
	// Then silence ends it.
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("idle relay did not end")
	}
}
