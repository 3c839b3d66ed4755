package hostagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/vm/transport"
)

// portForwarder makes the containers' published ports appear on the host:
// it follows the engine's container events, and for every published port
// listens on the host (127.0.0.1 unless the container asked for a host IP)
// and relays each connection, or UDP flow, to the port in the guest through
// the guest's dial service.
type portForwarder struct {
	g       transport.GuestDialer
	log     *slog.Logger
	changed func() // the forwarded set changed

	mu     sync.Mutex
	fwds   map[hostapi.ForwardedPort]*forward
	closed bool
}

type forward struct {
	guestAddr string
	closer    interface{ Close() error }
}

func newPortForwarder(g transport.GuestDialer, log *slog.Logger, changed func()) *portForwarder {
	return &portForwarder{g: g, log: log, changed: changed, fwds: map[hostapi.ForwardedPort]*forward{}}
}

// startPortsLocked starts forwarding for the running machine, unless its
// published ports are on the host already. Call with a.mu held.
func (a *Agent) startPortsLocked(ctx context.Context) {
	if a.drv.Info().HostPorts {
		return
	}
	pf := newPortForwarder(a.drv, a.log.With("part", "ports"), a.publish)
	a.ports = pf
	go pf.follow(ctx)
}

// follow keeps the forwards in step with the engine until ctx ends.
func (p *portForwarder) follow(ctx context.Context) {
	for ctx.Err() == nil {
		err := p.followOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("following container events", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (p *portForwarder) followOnce(ctx context.Context) error {
	cli, err := engineClient(p.g)
	if err != nil {
		return err
	}
	defer cli.Close()
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe first, then list: no change between the two is missed.
	ev := cli.Events(ectx, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container")})
	if err := p.sync(ctx, cli); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("event stream ended")
			}
			return err
		case m := <-ev.Messages:
			switch m.Action {
			case "start", "die", "stop", "kill", "destroy", "restart", "update":
				if err := p.sync(ctx, cli); err != nil {
					return err
				}
			}
		}
	}
}

// sync lists the running containers and forwards exactly their published
// ports.
func (p *portForwarder) sync(ctx context.Context, cli *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	want := map[hostapi.ForwardedPort]string{}
	for _, c := range list.Items {
		published := false
		for _, pt := range c.Ports {
			published = published || pt.PublicPort != 0
		}
		if !published {
			continue
		}
		insp, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			continue // gone meanwhile
		}
		for fp, addr := range publishedPorts(insp.Container) {
			want[fp] = addr
		}
	}
	p.apply(want)
	return nil
}

// publishedPorts are the forwards a container needs, with the guest
// address each one dials. The host listens on 127.0.0.1 for a port
// published on all addresses (`-p 8080:80`) and on the address asked for
// otherwise (`-p 0.0.0.0:8080:80`, `-p 127.0.0.2:8080:80`).
func publishedPorts(c container.InspectResponse) map[hostapi.ForwardedPort]string {
	out := map[hostapi.ForwardedPort]string{}
	if c.NetworkSettings == nil || c.State == nil || !c.State.Running {
		return out
	}
	var asked network.PortMap
	if c.HostConfig != nil {
		asked = c.HostConfig.PortBindings
	}
	for port, bindings := range c.NetworkSettings.Ports {
		proto := string(port.Proto())
		if proto != "tcp" && proto != "udp" {
			continue
		}
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				continue
			}
			ip := b.HostIP
			hostIP, guestIP := ip.String(), ip.String()
			if !ip.IsValid() || ip.IsUnspecified() {
				guestIP = "127.0.0.1"
				hostIP = "127.0.0.1"
				if explicit(asked[port], ip) {
					hostIP = ip.String()
				}
			} else if ip.IsLoopback() {
				guestIP = ip.String()
			}
			fp := hostapi.ForwardedPort{Container: c.ID, Proto: proto, HostIP: hostIP, HostPort: hp, GuestPort: hp}
			out[fp] = net.JoinHostPort(guestIP, strconv.Itoa(hp))
		}
	}
	return out
}

// explicit tells whether the container asked for the unspecified address
// ip by name (-p 0.0.0.0:8080:80) rather than by default (-p 8080:80).
func explicit(asked []network.PortBinding, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, b := range asked {
		if b.HostIP.IsValid() && b.HostIP == ip {
			return true
		}
	}
	return false
}

// apply opens the forwards in want that are missing and closes those not
// wanted any more. Two containers cannot hold the same host port; the
// engine refuses that before it gets here.
func (p *portForwarder) apply(want map[hostapi.ForwardedPort]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	changed := false
	for fp, f := range p.fwds {
		if addr, ok := want[fp]; !ok || addr != f.guestAddr {
			f.closer.Close()
			delete(p.fwds, fp)
			changed = true
		}
	}
	for fp, addr := range want {
		if _, ok := p.fwds[fp]; ok {
			continue
		}
		f, err := p.open(fp, addr)
		if err != nil {
			p.log.Warn("published port not forwarded", "port", fp.HostPort, "proto", fp.Proto, "hostIP", fp.HostIP, "err", err)
			continue
		}
		p.log.Info("forwarding", "proto", fp.Proto, "host", net.JoinHostPort(fp.HostIP, strconv.Itoa(fp.HostPort)), "guest", addr, "container", shortID(fp.Container))
		p.fwds[fp] = f
		changed = true
	}
	if changed && p.changed != nil {
		go p.changed()
	}
}

func (p *portForwarder) open(fp hostapi.ForwardedPort, guestAddr string) (*forward, error) {
	hostAddr := net.JoinHostPort(fp.HostIP, strconv.Itoa(fp.HostPort))
	if fp.Proto == "udp" {
		pc, err := net.ListenPacket("udp", hostAddr)
		if err != nil {
			return nil, err
		}
		go p.relayUDP(pc, guestAddr)
		return &forward{guestAddr: guestAddr, closer: pc}, nil
	}
	l, err := net.Listen("tcp", hostAddr)
	if err != nil {
		return nil, err
	}
	go transport.Forward(l, func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return transport.DialNet(ctx, p.g, "tcp", guestAddr)
	}, func(err error) { p.log.Debug("forward", "host", hostAddr, "err", err) })
	return &forward{guestAddr: guestAddr, closer: l}, nil
}

// relayUDP relays datagrams between clients of pc and guestAddr, one flow
// through the guest per client address; a flow ends when the guest side
// goes idle.
func (p *portForwarder) relayUDP(pc net.PacketConn, guestAddr string) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	defer func() {
		mu.Lock()
		for _, c := range flows {
			c.Close()
		}
		mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		key := from.String()
		mu.Lock()
		c := flows[key]
		mu.Unlock()
		if c == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err = transport.DialNet(ctx, p.g, "udp", guestAddr)
			cancel()
			if err != nil {
				p.log.Debug("udp forward", "guest", guestAddr, "err", err)
				continue
			}
			mu.Lock()
			flows[key] = c
			mu.Unlock()
			go func() {
				rb := make([]byte, 64<<10)
				for {
					n, err := c.Read(rb)
					if err != nil {
						break
					}
					pc.WriteTo(rb[:n], from)
				}
				c.Close()
				mu.Lock()
				if flows[key] == c {
					delete(flows, key)
				}
				mu.Unlock()
			}()
		}
		c.Write(buf[:n])
	}
}

// list returns the forwarded ports in a stable order.
func (p *portForwarder) list() []hostapi.ForwardedPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]hostapi.ForwardedPort, 0, len(p.fwds))
	for fp := range p.fwds {
		out = append(out, fp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].HostPort != out[j].HostPort {
			return out[i].HostPort < out[j].HostPort
		}
		if out[i].Proto != out[j].Proto {
			return out[i].Proto < out[j].Proto
		}
		return out[i].HostIP < out[j].HostIP
	})
	return out
}

// close ends every forward.
func (p *portForwarder) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for fp, f := range p.fwds {
		f.closer.Close()
		delete(p.fwds, fp)
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
