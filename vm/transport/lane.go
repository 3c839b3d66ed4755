package transport

// Lanes: bulk data from the guest without the multiplexer. A published
// port's download through the virtio-serial channel cost the guest a yamux
// frame per chunk (a hand-off between goroutines, a copy, a header and a
// body written to the port) and moved 120-150 MB/s under emulation, its
// PID 1 on a full CPU; the same bytes written straight to a port of their
// own moved 300-450 MB/s. So the machine has a few more virtio-serial
// ports, lanes, each one raw byte stream from the guest to the host, lent
// to one TCP connection of the dial service at a time:
//
//	host  → guest  "tcp ADDRESS lane=N\n" on a PortNet stream, as DialNet
//	guest → host   status byte (0: connected)
//	guest → host   on lane N: what the guest's TCP peer sends, unframed (spliced)
//	host  → guest  on the stream: what the host's client sends, in frames
//	               (4-byte big-endian length, bytes); a zero length ends it
//	               (half-close); the stream's end without one aborts
//	guest → host   on the stream, once the download ended (end of file or
//	               abort): the number of bytes it put on the lane (8 bytes)
//
// The host reads the lane up to that count, so the lane is clean for the
// next connection; a lane that goes wrong is not lent again.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// LaneDialer is a GuestDialer that also lends lanes (the QEMU driver over
// virtio-serial).
type LaneDialer interface {
	GuestDialer
	// TakeLane lends a free lane, or nil when none is free.
	TakeLane() *HostLane
}

// HostLane is the host's end of a lane.
type HostLane struct {
	Index int
	conn  net.Conn // QEMU's chardev socket
	pool  *lanePool
}

// lanePool holds the host's lanes: connected ones free to lend.
type lanePool struct {
	mu   sync.Mutex
	free []*HostLane
	all  []*HostLane
}

func (p *lanePool) take() *HostLane {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return nil
	}
	l := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return l
}

func (p *lanePool) put(l *HostLane) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, l)
}

// drop retires a lane whose stream went wrong: its bytes can no longer be
// told from the next connection's.
func (p *lanePool) drop(l *HostLane) { l.conn.Close() }

func (p *lanePool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.all {
		l.conn.Close()
	}
	p.free = nil
}

// newLanePool connects to each lane with dial; a lane that cannot be
// reached is left out.
func newLanePool(n int, dial func(i int) (net.Conn, error), log *slog.Logger) *lanePool {
	p := &lanePool{}
	for i := 0; i < n; i++ {
		c, err := dial(i)
		if err != nil {
			log.Warn("guest channel: lane not connected", "lane", i, "err", err)
			continue
		}
		l := &HostLane{Index: i, conn: c, pool: p}
		p.all = append(p.all, l)
		p.free = append(p.free, l)
	}
	return p
}

// laneConn is a TCP connection in the guest whose download comes on a lane
// and whose upload goes in frames on the stream.
type laneConn struct {
	net.Conn // the stream
	lane     *HostLane
	wmu      sync.Mutex

	mu    sync.Mutex
	total int64 // bytes the guest put on the lane; -1 until it says
	read  int64
	terr  error         // the stream failed before the count came
	count chan struct{} // closed once total or terr is set
	once  sync.Once
}

func newLaneConn(stream net.Conn, br *bufio.Reader, lane *HostLane) *laneConn {
	c := &laneConn{Conn: stream, lane: lane, total: -1, count: make(chan struct{})}
	go func() {
		var b [8]byte
		_, err := io.ReadFull(br, b[:])
		c.mu.Lock()
		if err != nil {
			c.terr = fmt.Errorf("lane %d: no byte count from the guest: %w", lane.Index, err)
		} else {
			c.total = int64(binary.BigEndian.Uint64(b[:]))
		}
		c.mu.Unlock()
		close(c.count)
		lane.conn.SetReadDeadline(time.Unix(1, 0)) // wake a reader waiting for bytes that will not come
	}()
	return c
}

func (c *laneConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		total, read, terr := c.total, c.read, c.terr
		c.mu.Unlock()
		switch {
		case total >= 0 && read >= total:
			return 0, io.EOF
		case terr != nil:
			return 0, terr
		case total >= 0:
			p = p[:min(int64(len(p)), total-read)]
		}
		n, err := c.lane.conn.Read(p)
		if n > 0 {
			c.mu.Lock()
			c.read += int64(n)
			c.mu.Unlock()
			return n, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.lane.conn.SetReadDeadline(time.Time{}) // woken by the count: look again
			continue
		}
		return 0, fmt.Errorf("lane %d: %w", c.lane.Index, err)
	}
}

// Write sends p to the guest's TCP peer, in frames on the stream.
func (c *laneConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	done := 0
	for len(p) > 0 {
		n := min(len(p), 1<<20)
		frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+n), uint32(n))
		if _, err := c.Conn.Write(append(frame, p[:n]...)); err != nil {
			return done, err
		}
		p, done = p[n:], done+n
	}
	return done, nil
}

// CloseWrite half-closes the guest's TCP connection.
func (c *laneConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write([]byte{0, 0, 0, 0})
	return err
}

// Close ends the connection: the stream's end tells the guest to stop (an
// abort, unless it was done); the lane goes back to the pool once read up
// to the guest's count.
func (c *laneConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { go c.release() })
	return err
}

func (c *laneConn) release() {
	l := c.lane
	// Read what the guest still puts on the lane (it may be blocked
	// writing it) until its count says the lane is clean, within 30 s.
	timer := time.AfterFunc(30*time.Second, func() { l.conn.Close() })
	_, err := io.Copy(io.Discard, readerOnly{c})
	if !timer.Stop() || err != nil {
		l.pool.drop(l)
		return
	}
	l.pool.put(l)
}

// readerOnly hides laneConn's other methods from io.Copy.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// ---- guest side ----

// GuestLanes are the guest's ends of the lanes (its virtio-serial ports
// berth.lane0 …), for the dial service.
type GuestLanes struct {
	mu    sync.Mutex
	lanes map[int]*guestLane
}

type guestLane struct {
	fd   int // the port, blocking
	busy bool
}

func (g *GuestLanes) take(i int) (*guestLane, error) {
	if g == nil {
		return nil, fmt.Errorf("no lane %d in this guest", i)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.lanes[i]
	switch {
	case l == nil:
		return nil, fmt.Errorf("no lane %d in this guest", i)
	case l.busy:
		return nil, fmt.Errorf("lane %d is busy", i)
	}
	l.busy = true
	return l, nil
}

func (g *GuestLanes) put(l *guestLane) {
	g.mu.Lock()
	l.busy = false
	g.mu.Unlock()
}

// serveLane relays a dial-service connection whose download goes on lane
// l: out's bytes to the lane, the stream's frames to out.
func serveLane(stream net.Conn, in *bufio.Reader, out net.Conn, l *guestLane, lanes *GuestLanes, log *slog.Logger) {
	up := make(chan struct{})
	go func() {
		defer close(up)
		if err := readFrames(out, in); err != nil {
			out.Close() // the host gave up: stop the download too
			return
		}
		if cw, ok := out.(closeWriter); ok {
			cw.CloseWrite()
		}
	}()
	n, err := l.spliceFrom(out)
	if err != nil {
		log.Debug("lane", "err", err)
	}
	lanes.put(l)
	stream.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	if cw, ok := stream.(closeWriter); ok {
		cw.CloseWrite()
	}
	<-up
	out.Close()
	stream.Close()
}

// readFrames copies the stream's frames to w until the zero-length one
// (nil), or until the stream ends without it (the host aborted: an error).
func readFrames(w io.Writer, r io.Reader) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("frames: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			return nil
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			return err
		}
	}
}
