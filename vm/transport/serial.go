package transport

// The virtio-serial channel: one byte stream between the host (QEMU's
// chardev unix socket) and the guest (/dev/vportNpM), carrying many
// connections multiplexed with yamux.
//
// A byte stream has no message boundaries and survives neither a guest
// reboot nor a host reconnect cleanly: bytes of the old session may still be
// in flight. So every session starts with a line handshake that each side
// finds by scanning, skipping whatever precedes it:
//
//	host  → guest  BERTH-RESET\n              (on connect: ends a stale guest session)
//	guest → host   BERTH-HELLO <nonce>\n      (repeated until answered)
//	host  → guest  BERTH-ACK <nonce> <key>\n  (host sends nothing more until START)
//	guest → host   BERTH-START <nonce>\n      (guest sends nothing but yamux after it)
//
// Yamux follows on both sides. Each stream the host opens begins with the
// guest port as 4 big-endian bytes and the channel key (KeySize bytes);
// the guest closes a stream whose key is not the session's, else answers
// one status byte (0: connected, else a 2-byte length and an error message)
// and then relays the stream to the local service for that port.
//
// The key is the host's, drawn at random for the machine's run (per boot:
// QEMU does not outlive its host agent). It reaches the guest here, on a
// channel only the user who started the machine can open (QEMU's chardev
// socket, in the user's 0700 state directory), never on the kernel command
// line, in an argument or in a file, and vsock connections (which any
// local user can open where the host has vhost-vsock) must begin with it
// too: see ServeVsock.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

const (
	tokReset = "BERTH-RESET"
	tokHello = "BERTH-HELLO"
	tokAck   = "BERTH-ACK"
	tokStart = "BERTH-START"

	helloEvery = 100 * time.Millisecond
)

// muxConfig is shared by both ends. Keepalives detect a peer that went away
// without closing (a guest that rebooted, a frozen VM). Half-closed streams
// are never timed out: `docker attach` with stdin closed may run for hours.
func muxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = 5 * time.Second
	c.ConnectionWriteTimeout = 15 * time.Second
	c.MaxStreamWindowSize = 4 << 20 // image loads and `docker cp` move megabytes
	c.StreamCloseTimeout = 0
	c.LogOutput = io.Discard
	return c
}

// readToken returns the next handshake token and its first argument (the
// rest in more), skipping anything else on the wire (stale session bytes,
// partial lines).
func readToken(br *bufio.Reader) (tok, arg string, err error) {
	tok, arg, _, err = readToken3(br)
	return tok, arg, err
}

func readToken3(br *bufio.Reader) (tok, arg, more string, err error) {
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", "", "", err
		}
		i := bytes.LastIndex(line, []byte("BERTH-"))
		if i < 0 {
			continue
		}
		f := bytes.Fields(line[i:])
		switch len(f) {
		case 1:
			return string(f[0]), "", "", nil
		case 2:
			return string(f[0]), string(f[1]), "", nil
		case 3:
			return string(f[0]), string(f[1]), string(f[2]), nil
		}
	}
}

func writeToken(w io.Writer, tok string, args ...string) error {
	for _, a := range args {
		tok += " " + a
	}
	_, err := io.WriteString(w, tok+"\n")
	return err
}

// KeySize is the length of the channel key.
const KeySize = 32

// NewKey draws a channel key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("transport: no randomness for the channel key: " + err.Error())
	}
	return k
}

// bufConn reads through the reader that did the handshake (it may hold the
// first yamux bytes) and writes and closes the underlying stream.
type bufConn struct {
	r io.Reader
	io.WriteCloser
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ---- host side ----

// SerialMux is the host end of a virtio-serial channel whose QEMU chardev is
// the unix socket at Path. Sessions are made on demand and remade after the
// guest reboots or the connection drops; Dial waits (within its context) for
// a guest agent to answer.
type SerialMux struct {
	Path string
	Log  *slog.Logger
	// LanePaths are the chardev sockets of the machine's lanes (lane.go),
	// connected with the first session.
	LanePaths []string

	key      []byte // the channel key, handed over at every session's start
	lanes    *lanePool
	dialLane func(i int) (net.Conn, error) // tests replace it

	sem  chan struct{} // one session setup at a time
	mu   sync.Mutex    // guards sess, conn, closed
	sess *yamux.Session
	conn net.Conn
	done bool
}

// NewSerialMux returns the host end for the chardev socket at path.
func NewSerialMux(path string, log *slog.Logger) *SerialMux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SerialMux{Path: path, Log: log, key: NewKey(), sem: make(chan struct{}, 1)}
}

// Key is the channel key: every stream, and every vsock connection to the
// guest, begins with it.
func (m *SerialMux) Key() []byte { return m.key }

// TakeLane lends a free lane for a dial-service connection (LaneDialer),
// or nil.
func (m *SerialMux) TakeLane() *HostLane {
	m.mu.Lock()
	p := m.lanes
	m.mu.Unlock()
	return p.take()
}

// Ready makes sure a session is up (the guest has the key), waiting for the
// guest agent within ctx.
func (m *SerialMux) Ready(ctx context.Context) error {
	_, err := m.session(ctx)
	return err
}

// DialGuest opens a connection to the guest service on port.
func (m *SerialMux) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		sess, err := m.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("dial guest port %d: %w", port, err)
		}
		st, err := sess.OpenStream()
		if err == nil {
			if err = openStream(ctx, st, port, m.key); err != nil {
				st.Close()
			}
		}
		if err == nil {
			return streamConn{st}, nil
		}
		// A session that died under us (the guest rebooted and is saying
		// hello on the old stream) is remade once.
		if sess.IsClosed() && attempt == 0 && ctx.Err() == nil {
			m.drop(sess)
			continue
		}
		return nil, fmt.Errorf("dial guest port %d: %w", port, err)
	}
}

// Reset drops the current session; the next Dial makes a new one. Drivers
// call it when they learn the guest went away (reboot, port closed).
func (m *SerialMux) Reset() {
	m.mu.Lock()
	sess, conn := m.sess, m.conn
	m.sess, m.conn = nil, nil
	m.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
	if conn != nil {
		conn.Close()
	}
}

// Close ends the session and refuses further dials.
func (m *SerialMux) Close() error {
	m.mu.Lock()
	m.done = true
	lanes := m.lanes
	m.mu.Unlock()
	m.Reset()
	lanes.close()
	return nil
}

func (m *SerialMux) drop(s *yamux.Session) {
	m.mu.Lock()
	if m.sess == s {
		m.sess = nil
		if m.conn != nil {
			m.conn.Close()
			m.conn = nil
		}
	}
	m.mu.Unlock()
	s.Close()
}

func (m *SerialMux) live() (*yamux.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil, net.ErrClosed
	}
	if m.sess != nil && !m.sess.IsClosed() {
		return m.sess, nil
	}
	return nil, nil
}

func (m *SerialMux) session(ctx context.Context) (*yamux.Session, error) {
	if s, err := m.live(); s != nil || err != nil {
		return s, err
	}
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the guest agent: %w", context.Cause(ctx))
	}
	if s, err := m.live(); s != nil || err != nil {
		return s, err
	}
	m.Reset() // close a dead session's connection

	// QEMU may not have created the socket yet, or may still be serving a
	// previous host connection: retry until the guest answers or ctx ends.
	var conn net.Conn
	var br *bufio.Reader
	for {
		var err error
		conn, br, err = m.connect(ctx)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the guest agent on %s: %w (%v)", m.Path, context.Cause(ctx), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	conn.SetDeadline(time.Time{})
	sess, err := yamux.Client(bufConn{br, conn}, muxConfig())
	if err != nil {
		conn.Close()
		return nil, err
	}
	m.mu.Lock()
	if m.done {
		m.mu.Unlock()
		sess.Close()
		return nil, net.ErrClosed
	}
	m.sess, m.conn = sess, conn
	connectLanes := m.lanes == nil && len(m.LanePaths) > 0
	m.mu.Unlock()
	m.Log.Debug("guest channel up", "chardev", m.Path)
	if connectLanes {
		// The guest's ports are open once it says hello; connected now,
		// the lanes are up before anyone asks for one.
		dial := m.dialLane
		if dial == nil {
			dial = func(i int) (net.Conn, error) { return net.DialTimeout("unix", m.LanePaths[i], 5*time.Second) }
		}
		p := newLanePool(len(m.LanePaths), dial, m.Log)
		m.mu.Lock()
		if m.lanes == nil && !m.done {
			m.lanes = p
		} else {
			defer p.close()
		}
		m.mu.Unlock()
	}
	return sess, nil
}

// connect dials the chardev socket and does the handshake, giving up when
// ctx ends.
func (m *SerialMux) connect(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", m.Path)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	br, err := hostHandshake(conn, m.key)
	if !stop() && err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, br, nil
}

func hostHandshake(c net.Conn, key []byte) (*bufio.Reader, error) {
	if err := writeToken(c, tokReset); err != nil {
		return nil, fmt.Errorf("guest channel handshake: %w", err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	acked := ""
	for {
		tok, arg, err := readToken(br)
		if err != nil {
			return nil, fmt.Errorf("guest channel handshake: %w", err)
		}
		switch {
		case tok == tokHello && arg != "" && arg != acked:
			// Acked once: the guest's repeats of the same hello are skipped,
			// an ACK that came after START would corrupt its yamux stream.
			if err := writeToken(c, tokAck, arg, hex.EncodeToString(key)); err != nil {
				return nil, fmt.Errorf("guest channel handshake: %w", err)
			}
			acked = arg
		case tok == tokStart && arg != "" && arg == acked:
			return br, nil
		}
	}
}

// openStream sends the stream's header (port, key) and reads the guest's
// answer.
func openStream(ctx context.Context, st *yamux.Stream, port uint32, key []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
		defer st.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hdr := binary.BigEndian.AppendUint32(make([]byte, 0, 4+KeySize), port)
	if _, err := st.Write(append(hdr, key...)); err != nil {
		return err
	}
	var status [1]byte
	if _, err := io.ReadFull(st, status[:]); err != nil {
		return fmt.Errorf("no answer from the guest agent: %w", err)
	}
	if status[0] == 0 {
		return nil
	}
	var n [2]byte
	if _, err := io.ReadFull(st, n[:]); err != nil {
		return fmt.Errorf("refused by the guest agent")
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(st, msg); err != nil {
		return fmt.Errorf("refused by the guest agent")
	}
	return fmt.Errorf("guest: %s", msg)
}

// streamConn is a mux stream as a net.Conn with a half-close. yamux's Close
// is itself a half-close (FIN); the stream ends when the guest side, having
// seen it, finishes too.
type streamConn struct{ *yamux.Stream }

func (c streamConn) CloseWrite() error { return c.Stream.Close() }

// ---- guest side ----

// GuestMux serves the host's streams in the guest, relaying each to the
// local address that Routes gives for its port, or handing it to the
// in-process service Handlers gives (one relay less under emulation). A
// stream, or vsock connection, that does not begin with the channel key
// (from the virtio-serial session's handshake) is closed before anything is
// relayed.
type GuestMux struct {
	Routes   Routes
	Handlers map[uint32]func(net.Conn)
	Log      *slog.Logger
	// PrivateVsock: the machine's vsock device reaches the process that
	// runs the machine and nothing else (Apple's Virtualization framework),
	// which then needs no key and has no virtio-serial port to hand one
	// over. Otherwise (vhost-vsock, which every local user can dial)
	// vsock connections must begin with the key.
	PrivateVsock bool

	keyMu  sync.Mutex
	key    []byte
	keySet chan struct{} // closed once a key is known

	// Tests replace the vsock listener, its peers' context IDs and how
	// long a connection waits for a key the guest does not have yet.
	listenVsock func(port uint32) (net.Listener, error)
	peerCID     func(net.Conn) (uint32, bool)
	keyWait     time.Duration
}

// setKey takes the key of a new session.
func (g *GuestMux) setKey(k []byte) {
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	g.initKey()
	first := g.key == nil
	g.key = k
	if first {
		close(g.keySet)
	}
}

func (g *GuestMux) initKey() {
	if g.keySet == nil {
		g.keySet = make(chan struct{})
	}
}

// waitKey returns the channel key once one is known, or nil when ctx ends.
func (g *GuestMux) waitKey(ctx context.Context) []byte {
	g.keyMu.Lock()
	g.initKey()
	ch := g.keySet
	g.keyMu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	return g.key
}

// checkKey reads KeySize bytes from c and tells whether they are the
// channel key (compared in constant time).
func (g *GuestMux) checkKey(ctx context.Context, c io.Reader) bool {
	got := make([]byte, KeySize)
	if _, err := io.ReadFull(c, got); err != nil {
		return false
	}
	want := g.waitKey(ctx)
	return want != nil && subtle.ConstantTimeCompare(got, want) == 1
}

// ServeSerial runs the guest end over the port that open returns (the
// virtio-serial device), reopening it after every session ends, until ctx
// is done.
func (g *GuestMux) ServeSerial(ctx context.Context, open func() (io.ReadWriteCloser, error)) error {
	log := g.log()
	for ctx.Err() == nil {
		port, err := open()
		if err != nil {
			log.Warn("guest channel: open", "err", err)
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, func() { port.Close() })
		up, err := g.serveSession(ctx, port)
		stop()
		port.Close()
		if ctx.Err() == nil {
			// A virtio port reads EOF while no host is connected: wait a
			// little and say hello again.
			if up {
				log.Info("guest channel: session ended", "err", err)
			}
			sleep(ctx, 100*time.Millisecond)
		}
	}
	return ctx.Err()
}

func (g *GuestMux) serveSession(ctx context.Context, port io.ReadWriteCloser) (up bool, err error) {
	br, err := guestHandshake(ctx, port, g.setKey)
	if err != nil {
		return false, err
	}
	sess, err := yamux.Server(bufConn{br, port}, muxConfig())
	if err != nil {
		return false, err
	}
	defer sess.Close()
	g.log().Info("guest channel: session up")
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return true, err
		}
		go g.serveStream(ctx, st)
	}
}

// guestHandshake answers the host's; the session's key is taken (setKey)
// before the guest says START, so the host, which waits for START, never
// uses it before the guest knows it.
func guestHandshake(ctx context.Context, port io.ReadWriteCloser, setKey func([]byte)) (*bufio.Reader, error) {
	var b [8]byte
	rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])

	// Say hello until the host answers: the host may connect at any time,
	// and QEMU drops what the guest writes while no one is connected.
	var mu sync.Mutex // serializes writes; stopped is set under it
	stopped := false
	helloDone := make(chan struct{})
	go func() {
		defer close(helloDone)
		t := time.NewTicker(helloEvery)
		defer t.Stop()
		for {
			mu.Lock()
			if stopped {
				mu.Unlock()
				return
			}
			writeToken(port, tokHello, nonce)
			mu.Unlock()
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	stopHello := func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
	defer stopHello()

	br := bufio.NewReaderSize(port, 64<<10)
	var key []byte
	for {
		tok, arg, more, err := readToken3(br)
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		if tok != tokAck || arg != nonce {
			continue
		}
		if k, err := hex.DecodeString(more); err == nil && len(k) == KeySize {
			key = k
			break
		}
	}
	stopHello()
	<-helloDone
	setKey(key)
	if err := writeToken(port, tokStart, nonce); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return br, nil
}

func (g *GuestMux) serveStream(ctx context.Context, st *yamux.Stream) {
	st.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		st.Close()
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ok := g.checkKey(kctx, st)
	cancel()
	if !ok {
		g.log().Warn("guest channel: a stream without the key, closed")
		st.Close()
		return
	}
	port := binary.BigEndian.Uint32(hdr[:])
	if h := g.Handlers[port]; h != nil {
		if _, err := st.Write([]byte{0}); err != nil {
			st.Close()
			return
		}
		st.SetDeadline(time.Time{})
		h(streamConn{st})
		return
	}
	local, err := g.dialLocal(ctx, port)
	if err != nil {
		msg := err.Error()
		if len(msg) > 1024 {
			msg = msg[:1024]
		}
		reply := []byte{1, 0, 0}
		binary.BigEndian.PutUint16(reply[1:], uint16(len(msg)))
		st.Write(append(reply, msg...))
		st.Close()
		return
	}
	if _, err := st.Write([]byte{0}); err != nil {
		local.Close()
		st.Close()
		return
	}
	st.SetDeadline(time.Time{})
	Splice(streamConn{st}, local)
}

func (g *GuestMux) dialLocal(ctx context.Context, port uint32) (net.Conn, error) {
	addr, ok := g.Routes[port]
	if !ok {
		return nil, fmt.Errorf("no service on guest port %d", port)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("guest port %d: %w", port, err)
	}
	return c, nil
}

func (g *GuestMux) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ServeVsock serves each route on its own vsock port until ctx is done:
// the channel where the host has vhost-vsock. Only the host may connect
// (context ID 2: not a container in this guest, not another guest), and,
// unless PrivateVsock, each connection must begin with the channel key;
// others are closed before anything is relayed.
func (g *GuestMux) ServeVsock(ctx context.Context) error {
	listen, peer := g.listenVsock, g.peerCID
	if listen == nil {
		listen = func(port uint32) (net.Listener, error) { return Listen(fmt.Sprintf("vsock://:%d", port)) }
	}
	if peer == nil {
		peer = vsockPeer
	}
	var wg sync.WaitGroup
	var errs []error
	var mu sync.Mutex
	ports := map[uint32]bool{}
	for port := range g.Routes {
		ports[port] = true
	}
	for port := range g.Handlers {
		ports[port] = true
	}
	for port := range ports {
		l, err := listen(port)
		if err != nil {
			return fmt.Errorf("serve vsock port %d: %w", port, err)
		}
		context.AfterFunc(ctx, func() { l.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					return
				}
				go g.serveVsockConn(ctx, c, port, peer)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (g *GuestMux) serveVsockConn(ctx context.Context, c net.Conn, port uint32, peer func(net.Conn) (uint32, bool)) {
	if cid, ok := peer(c); !ok || cid != hostCID {
		g.log().Warn("vsock: a connection not from the host, closed", "port", port, "cid", cid)
		c.Close()
		return
	}
	if !g.PrivateVsock {
		wait := g.keyWait
		if wait == 0 {
			wait = 10 * time.Second
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		kctx, cancel := context.WithTimeout(ctx, wait)
		ok := g.checkKey(kctx, c)
		cancel()
		if !ok {
			g.log().Warn("vsock: a connection without the key, closed", "port", port)
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
	}
	if h := g.Handlers[port]; h != nil {
		h(c)
		return
	}
	local, err := g.dialLocal(ctx, port)
	if err != nil {
		g.log().Warn("vsock", "port", port, "err", err)
		c.Close()
		return
	}
	Splice(c, local)
}
