//go:build linux

package network

import (
	"errors"
	"fmt"
	"io"
	gonet "net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// A published port is forwarded by a DNAT rule in the engine's nftables
// table: for traffic from elsewhere, from the host itself and from other
// containers alike, at kernel speed. The engine also holds the host port
// open with a socket of its own, as dockerd does: that reserves it (a
// second container, or any other program, gets "port is already
// allocated"), picks ephemeral ports, and relays in user space whatever
// reaches the socket rather than the rule.

// portKey is one host port in use.
type portKey struct {
	proto string
	ip    netip.Addr // 0.0.0.0 for all addresses
	port  uint16
}

// binding is a published port held for a container.
type binding struct {
	container string
	nat       natPort
	ln        gonet.Listener   // tcp
	pc        gonet.PacketConn // udp
	mu        sync.Mutex
	conns     map[gonet.Conn]struct{}
	done      sync.WaitGroup
	relayed   atomic.Int64 // connections that reached the socket, not the rule
}

func (b *binding) close() {
	if b.ln != nil {
		b.ln.Close()
	}
	if b.pc != nil {
		b.pc.Close()
	}
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.done.Wait()
}

// publishLocked binds the container's published ports (and with -P its
// exposed ones) and installs their rules; addr is the container's address
// on its primary network. Call with m.mu held.
func (m *Manager) publishLocked(sb *Sandbox, req JoinRequest, addr netip.Addr) error {
	want := network.PortMap{}
	for p, bs := range req.PortBindings {
		want[p] = bs
	}
	if req.PublishAll {
		for p := range req.Exposed {
			if len(want[p]) == 0 {
				want[p] = []network.PortBinding{{}}
			}
		}
	}
	for p := range req.Exposed {
		sb.Ports[p] = nil
	}
	ports := slices.SortedFunc(func(yield func(network.Port) bool) {
		for p := range want {
			if !yield(p) {
				return
			}
		}
	}, func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range ports {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" {
			return errdefs.InvalidArgument("publishing %s ports is not supported", proto)
		}
		bs := want[p]
		if len(bs) == 0 {
			bs = []network.PortBinding{{}}
		}
		for _, pb := range bs {
			b, key, err := m.bindPort(req, proto, pb, addr, p.Num())
			if err != nil {
				return err
			}
			m.ports[key] = b
			sb.bindings = append(sb.bindings, key)
			sb.Ports[p] = append(sb.Ports[p], network.PortBinding{HostIP: key.ip, HostPort: strconv.Itoa(int(key.port))})
		}
	}
	if len(sb.bindings) == 0 {
		return nil
	}
	return m.applyNATLocked()
}

// bindPort reserves one host port: HostPort empty for an ephemeral one, a
// number, or a range "8000-8010" (the first free one).
func (m *Manager) bindPort(req JoinRequest, proto string, pb network.PortBinding, addr netip.Addr, port uint16) (*binding, portKey, error) {
	ip := pb.HostIP
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = netip.IPv4Unspecified()
	}
	if !ip.Is4() {
		return nil, portKey{}, errdefs.NotImplemented("publishing on IPv6 address %s is not supported", ip)
	}
	lo, hi := uint16(0), uint16(0)
	if pb.HostPort != "" {
		a, b, isRange := strings.Cut(pb.HostPort, "-")
		l, err1 := strconv.ParseUint(a, 10, 16)
		h, err2 := l, error(nil)
		if isRange {
			h, err2 = strconv.ParseUint(b, 10, 16)
		}
		if err1 != nil || err2 != nil || h < l {
			return nil, portKey{}, errdefs.InvalidArgument("invalid host port %q", pb.HostPort)
		}
		lo, hi = uint16(l), uint16(h)
	}
	var lastErr error
	for hp := uint32(lo); hp <= uint32(hi); hp++ {
		key := portKey{proto: proto, ip: ip, port: uint16(hp)}
		if hp != 0 && m.portTakenLocked(key) {
			lastErr = errPortAllocated
			continue
		}
		b := &binding{container: req.ID, conns: map[gonet.Conn]struct{}{}}
		hostAddr := gonet.JoinHostPort(ip.String(), strconv.Itoa(int(hp)))
		var err error
		var bound int
		if proto == "tcp" {
			b.ln, err = gonet.Listen("tcp4", hostAddr)
			if err == nil {
				bound = b.ln.Addr().(*gonet.TCPAddr).Port
			}
		} else {
			b.pc, err = gonet.ListenPacket("udp4", hostAddr)
			if err == nil {
				bound = b.pc.LocalAddr().(*gonet.UDPAddr).Port
			}
		}
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				lastErr = errPortAllocated
				continue
			}
			return nil, portKey{}, fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): Error starting userland proxy: %w", req.Name, req.ID, err)
		}
		key.port = uint16(bound)
		b.nat = natPort{proto: proto, hostIP: ip, hostPort: key.port, addr: addr, port: port}
		if b.ln != nil {
			b.done.Add(1)
			go b.relay(gonet.JoinHostPort(addr.String(), strconv.Itoa(int(port))))
		}
		return b, key, nil
	}
	if errors.Is(lastErr, errPortAllocated) {
		return nil, portKey{}, fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): Bind for %s failed: port is already allocated",
			req.Name, req.ID, gonet.JoinHostPort(ip.String(), pb.HostPort))
	}
	return nil, portKey{}, fmt.Errorf("publish port %d/%s: %v", port, proto, lastErr)
}

var errPortAllocated = errors.New("port is already allocated")

// portTakenLocked reports whether the engine already holds key (or the same
// port on all addresses, or on a specific one when key is all addresses).
func (m *Manager) portTakenLocked(key portKey) bool {
	for k := range m.ports {
		if k.proto == key.proto && k.port == key.port && (k.ip == key.ip || k.ip.IsUnspecified() || key.ip.IsUnspecified()) {
			return true
		}
	}
	return false
}

// relay accepts what reaches the TCP socket instead of the DNAT rule and
// copies it to the container (splice(2) moves the bytes in the kernel).
func (b *binding) relay(target string) {
	defer b.done.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if !b.track(c) {
			c.Close()
			return
		}
		b.relayed.Add(1)
		b.done.Add(1)
		go func() {
			defer b.done.Done()
			defer b.untrack(c)
			up, err := gonet.Dial("tcp4", target)
			if err != nil {
				c.Close()
				return
			}
			if !b.track(up) {
				up.Close()
				c.Close()
				return
			}
			defer b.untrack(up)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(up, c)
				up.(*gonet.TCPConn).CloseWrite()
			}()
			io.Copy(c, up)
			c.(*gonet.TCPConn).CloseWrite()
			wg.Wait()
			c.Close()
			up.Close()
		}()
	}
}

func (b *binding) track(c gonet.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *binding) untrack(c gonet.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns != nil {
		delete(b.conns, c)
	}
}
