package transport

// The guest's network dial service (guest port PortNet): the host asks the
// guest to connect to a TCP or UDP address as seen from inside the VM (a
// container's published port on the guest's loopback …) and relays through
// the stream. Whatever carries guest ports carries this too, so published
// ports reach the guest the same way over vsock or virtio-serial.
//
//	host  → guest  "NETWORK ADDRESS[ lane=N]\n"      (tcp 127.0.0.1:8080, udp 127.0.0.1:53)
//	guest → host   0 | 1 LEN16 MESSAGE | 2          (connected | why not | connected, lane not taken)
//
// Then TCP bytes flow as they are; UDP datagrams are framed, each one
// preceded by its length as 2 big-endian bytes, in both directions. A TCP
// connection given a lane (lane.go) sends its download there.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxDialLine bounds the request line; an address is far shorter.
const maxDialLine = 512

// DialNet connects to addr on network ("tcp" or "udp") inside the guest
// through g's dial service. A UDP connection keeps datagram boundaries:
// each Write sends one datagram and each Read returns one.
func DialNet(ctx context.Context, g GuestDialer, network, addr string) (net.Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	if strings.ContainsAny(addr, " \n") || len(addr) > maxDialLine-16 {
		return nil, fmt.Errorf("dial guest %s %q: bad address", network, addr)
	}
	var lane *HostLane
	if ld, ok := g.(LaneDialer); ok && !isUDP(network) {
		lane = ld.TakeLane()
	}
	c, err := g.DialGuest(ctx, PortNet)
	if err != nil {
		if lane != nil {
			lane.pool.put(lane)
		}
		return nil, fmt.Errorf("dial guest %s %s: %w", network, addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	req := network + " " + addr
	if lane != nil {
		req += fmt.Sprintf(" lane=%d", lane.Index)
	}
	laned := false
	err = func() error {
		if _, err := io.WriteString(c, req+"\n"); err != nil {
			return err
		}
		var err error
		laned, err = readStatus(c)
		return err
	}()
	if !stop() && err == nil {
		err = context.Cause(ctx)
	}
	if lane != nil && (err != nil || !laned) {
		lane.pool.put(lane) // the guest did not take it: nothing went on it
		lane = nil
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial guest %s %s: %w", network, addr, err)
	}
	c.SetDeadline(time.Time{})
	switch {
	case isUDP(network):
		return &datagramConn{Conn: c}, nil
	case lane != nil:
		return newLaneConn(c, bufio.NewReader(c), lane), nil
	}
	return c, nil
}

// Status bytes of the dial service.
const (
	statusConnected = 0
	statusRefused   = 1
	statusNoLane    = 2 // connected, without the lane asked for
)

// readStatus reads the one-byte answer and, on refusal, its message; laned
// tells whether a lane asked for was taken.
func readStatus(r io.Reader) (laned bool, err error) {
	var st [1]byte
	if _, err := io.ReadFull(r, st[:]); err != nil {
		return false, fmt.Errorf("no answer from the guest: %w", err)
	}
	switch st[0] {
	case statusConnected:
		return true, nil
	case statusNoLane:
		return false, nil
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return false, errors.New("refused by the guest")
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return false, errors.New("refused by the guest")
	}
	return false, fmt.Errorf("guest: %s", msg)
}

func writeRefusal(w io.Writer, err error) {
	msg := err.Error()
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	b := []byte{statusRefused, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(len(msg)))
	w.Write(append(b, msg...))
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return nil
	}
	return fmt.Errorf("network %q: want tcp or udp", network)
}

func isUDP(network string) bool { return strings.HasPrefix(network, "udp") }

// ServeNet runs the guest end of the dial service on l until l is closed.
func ServeNet(l net.Listener, log *slog.Logger) error {
	s := &NetService{Log: log}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go s.ServeConn(c)
	}
}

// ServeNetConn serves one connection of the dial service, without lanes.
func ServeNetConn(c net.Conn, log *slog.Logger) { (&NetService{Log: log}).ServeConn(c) }

// NetService is the guest end of the dial service.
type NetService struct {
	Log   *slog.Logger
	Lanes *GuestLanes // nil: the host's lanes are refused
}

// ServeConn serves one connection (GuestMux Handlers run it in-process).
func (s *NetService) ServeConn(c net.Conn) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, maxDialLine)
	line, err := br.ReadSlice('\n')
	if err != nil {
		writeRefusal(c, errors.New("bad request: want \"NETWORK ADDRESS\\n\""))
		c.Close()
		return
	}
	f := strings.Fields(string(line))
	if len(f) < 2 || len(f) > 3 {
		writeRefusal(c, errors.New("bad request: want \"NETWORK ADDRESS\\n\""))
		c.Close()
		return
	}
	network, addr := f[0], f[1]
	if err := checkNetwork(network); err != nil {
		writeRefusal(c, err)
		c.Close()
		return
	}
	laneNo := -1
	if len(f) == 3 {
		n, ok := strings.CutPrefix(f[2], "lane=")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || i < 0 || isUDP(network) {
			writeRefusal(c, fmt.Errorf("bad request: %q", f[2]))
			c.Close()
			return
		}
		laneNo = i
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := d.DialContext(ctx, network, addr)
	cancel()
	if err != nil {
		log.Debug("guest dial", "network", network, "addr", addr, "err", err)
		writeRefusal(c, err)
		c.Close()
		return
	}
	var lane *guestLane
	status := byte(statusConnected)
	if laneNo >= 0 {
		if lane, err = s.Lanes.take(laneNo); err != nil {
			log.Debug("guest dial: no lane", "err", err)
			status = statusNoLane
		}
	}
	if _, err := c.Write([]byte{status}); err != nil {
		if lane != nil {
			s.Lanes.put(lane)
		}
		out.Close()
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	in := &bufferedConn{Conn: c, r: br}
	switch {
	case isUDP(network):
		relayDatagrams(&datagramConn{Conn: in}, out)
	case lane != nil:
		serveLane(in, br, out, lane, s.Lanes, log)
	default:
		Splice(in, out)
	}
}

// bufferedConn reads through the reader that parsed the request line.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// udpIdle ends a UDP relay with no traffic either way, as a NAT forgets a
// flow (Linux conntrack's UDP stream timeout is 120 s).
const udpIdle = 2 * time.Minute

// relayDatagrams copies datagrams between two packet-preserving
// connections until one fails or neither direction carried anything for
// udpIdle.
func relayDatagrams(a, b net.Conn) {
	relayDatagramsIdle(a, b, udpIdle)
}

func relayDatagramsIdle(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64 // unix nanos of the last datagram either way
	last.Store(time.Now().UnixNano())
	var once sync.Once
	done := func() { once.Do(func() { a.Close(); b.Close() }) }
	pipe := func(dst, src net.Conn) {
		defer done()
		buf := make([]byte, 64<<10)
		for {
			src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
			n, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction is busy
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(a, b)
	pipe(b, a)
}

// datagramConn carries datagrams over a stream, each framed by its length.
type datagramConn struct {
	net.Conn
	rmu, wmu sync.Mutex
}

// Read returns one datagram; one longer than p is truncated, as a UDP
// socket does.
func (c *datagramConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var h [2]byte
	if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n <= len(p) {
		_, err := io.ReadFull(c.Conn, p[:n])
		return n, err
	}
	if _, err := io.ReadFull(c.Conn, p); err != nil {
		return 0, err
	}
	_, err := io.CopyN(io.Discard, c.Conn, int64(n-len(p)))
	return len(p), err
}

// Write sends p as one datagram.
func (c *datagramConn) Write(p []byte) (int, error) {
	if len(p) > 0xffff {
		return 0, fmt.Errorf("datagram of %d bytes is too long", len(p))
	}
	b := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(b, uint16(len(p)))
	copy(b[2:], p)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.Conn.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
