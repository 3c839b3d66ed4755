package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeVsock stands in for the guest's vsock listeners: a TCP listener per
// port, each connection with the context ID its dialer chose.
type fakeVsock struct {
	mu    sync.Mutex
	ls    map[uint32]net.Listener
	cid   map[string]uint32 // dialer's local address → its context ID
	ready chan struct{}
}

func newFakeVsock() *fakeVsock {
	return &fakeVsock{ls: map[uint32]net.Listener{}, cid: map[string]uint32{}, ready: make(chan struct{})}
}

func (f *fakeVsock) listen(port uint32) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.ls[port] = l
	f.mu.Unlock()
	return l, nil
}

func (f *fakeVsock) peer(c net.Conn) (uint32, bool) {
	// The dialer records its context ID once its dial returned: wait for it.
	for i := 0; i < 200; i++ {
		f.mu.Lock()
		cid, ok := f.cid[c.RemoteAddr().String()]
		f.mu.Unlock()
		if ok {
			return cid, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// dial connects to port as context ID cid and sends first.
func (f *fakeVsock) dial(t *testing.T, port, cid uint32, first []byte) net.Conn {
	t.Helper()
	var l net.Listener
	for i := 0; i < 200 && l == nil; i++ {
		f.mu.Lock()
		l = f.ls[port]
		f.mu.Unlock()
		if l == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if l == nil {
		t.Fatalf("no listener on port %d", port)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.cid[c.LocalAddr().String()] = cid
	f.mu.Unlock()
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	return c
}

// recorder is a service that keeps what it was sent and answers "served".
type recorder struct {
	mu  sync.Mutex
	got bytes.Buffer
}

func (r *recorder) serve(c net.Conn) {
	defer c.Close()
	io.WriteString(c, "served\n")
	c.SetReadDeadline(time.Now().Add(time.Second))
	b := make([]byte, 4096)
	n, _ := c.Read(b)
	r.mu.Lock()
	r.got.Write(b[:n])
	r.mu.Unlock()
}

func (r *recorder) bytes() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// answer is what a connection gets before the guest closes it.
func answer(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestVsockNeedsHostAndKey: over vsock, only the host reaches a guest
// service, and only with the channel key the virtio-serial session handed
// over; every other connection is closed with nothing served.
func TestVsockNeedsHostAndKey(t *testing.T) {
	f := newFakeChardev(t)
	vs := newFakeVsock()
	rec := &recorder{}
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortEngine: rec.serve},
		listenVsock: vs.listen, peerCID: vs.peer}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); g.ServeSerial(ctx, f.open) }()
	go func() { defer wg.Done(); g.ServeVsock(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	m := NewSerialMux(f.path, nil)
	defer m.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := m.Ready(rctx); err != nil {
		t.Fatal(err)
	}
	key := m.Key()
	api := []byte("GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")

	wrong := bytes.Repeat([]byte{0x5a}, KeySize)
	for name, c := range map[string]struct {
		cid   uint32
		first []byte
	}{
		"no key, the API at once": {hostCID, api},
		"a wrong key":             {hostCID, append(append([]byte(nil), wrong...), api...)},
		"a short key":             {hostCID, key[:KeySize-1]},
		"the key, not the host":   {1, append(append([]byte(nil), key...), api...)}, // a process in the guest (vsock loopback)
		"the key, another guest":  {7, append(append([]byte(nil), key...), api...)},
	} {
		c := vs.dial(t, PortEngine, c.cid, c.first)
		if got := answer(t, c); got != "" {
			t.Errorf("%s: served: %q", name, got)
		}
	}
	if got := rec.bytes(); got != "" {
		t.Fatalf("the service saw bytes of refused connections: %q", got)
	}

	c := vs.dial(t, PortEngine, hostCID, append(append([]byte(nil), key...), api...))
	if got := answer(t, c); got != "served\n" {
		t.Fatalf("the host with the key: %q", got)
	}
	if got := rec.bytes(); got != string(api) {
		t.Fatalf("the service got %q, want the request", got)
	}

	// A new session (the host reconnected) brings a new key; the old one
	// no longer opens anything.
	m.Close()
	m2 := NewSerialMux(f.path, nil)
	defer m2.Close()
	rctx2, rcancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel2()
	if err := m2.Ready(rctx2); err != nil {
		t.Fatal(err)
	}
	if got := answer(t, vs.dial(t, PortEngine, hostCID, key)); got != "" {
		t.Errorf("the previous session's key: served %q", got)
	}
	if got := answer(t, vs.dial(t, PortEngine, hostCID, m2.Key())); got != "served\n" {
		t.Errorf("the new key: %q", got)
	}
}

// TestVsockWithoutKeyBeforeSession: until a virtio-serial session handed a
// key over, nothing is served over vsock.
func TestVsockWithoutKeyBeforeSession(t *testing.T) {
	vs := newFakeVsock()
	rec := &recorder{}
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortEngine: rec.serve},
		listenVsock: vs.listen, peerCID: vs.peer, keyWait: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.ServeVsock(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := vs.dial(t, PortEngine, hostCID, bytes.Repeat([]byte{0}, KeySize))
	if got := answer(t, c); got != "" || rec.bytes() != "" {
		t.Fatalf("served before any key: %q %q", got, rec.bytes())
	}
}

// TestPrivateVsock: where the vsock device reaches only the process running
// the machine (Apple Virtualization), the host needs no key; other context
// IDs are still refused.
func TestPrivateVsock(t *testing.T) {
	vs := newFakeVsock()
	rec := &recorder{}
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortEngine: rec.serve},
		listenVsock: vs.listen, peerCID: vs.peer, PrivateVsock: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.ServeVsock(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if got := answer(t, vs.dial(t, PortEngine, hostCID, []byte("x"))); got != "served\n" {
		t.Errorf("the host: %q", got)
	}
	if got := answer(t, vs.dial(t, PortEngine, 1, []byte("x"))); got != "" {
		t.Errorf("a process in the guest: served %q", got)
	}
}

// TestSerialStreamNeedsKey: a stream on the virtio-serial session that does
// not carry the session's key is closed without a status byte.
func TestSerialStreamNeedsKey(t *testing.T) {
	f := newFakeChardev(t)
	rec := &recorder{}
	g := &GuestMux{Routes: Routes{}, Handlers: map[uint32]func(net.Conn){PortEngine: rec.serve}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.ServeSerial(ctx, f.open) }()
	t.Cleanup(func() { cancel(); <-done })
	m := NewSerialMux(f.path, nil)
	defer m.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	sess, err := m.session(dctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	hdr := binary.BigEndian.AppendUint32(nil, PortEngine)
	st.Write(append(hdr, bytes.Repeat([]byte{1}, KeySize)...))
	st.SetReadDeadline(time.Now().Add(15 * time.Second))
	b, _ := io.ReadAll(st)
	if len(b) != 0 || rec.bytes() != "" {
		t.Fatalf("a stream with a wrong key got %q (service saw %q)", b, rec.bytes())
	}
	// The session's own streams still work.
	c, err := m.DialGuest(dctx, PortEngine)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := io.ReadAll(io.LimitReader(c, 7))
	if !strings.HasPrefix(string(line), "served") {
		t.Fatalf("with the key: %q", line)
	}
}
