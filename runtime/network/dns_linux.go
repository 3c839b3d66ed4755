//go:build linux

package network

import (
	"fmt"
	gonet "net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The embedded DNS server of user-defined networks, as dockerd's: each
// container on such a network gets a server at 127.0.0.11:53 inside its own
// namespace (its sockets are made there, and served from the engine), which
// answers the names of the containers on its networks (name, short ID,
// aliases) and host.docker.internal, and forwards everything else to the
// host's resolvers from the host's namespace.

const dnsTTL = 600

type dnsServer struct {
	servers []*dns.Server
	wg      sync.WaitGroup
}

func (d *dnsServer) close() {
	for _, s := range d.servers {
		s.Shutdown()
	}
	d.wg.Wait()
}

// startDNS opens the container's DNS sockets in its namespace and serves
// them, forwarding to its --dns servers or else to host's (resolv.conf).
func (m *Manager) startDNS(sb *Sandbox, host []byte) (*dnsServer, error) {
	var pc gonet.PacketConn
	var ln gonet.Listener
	err := inNetns(sb.Path, func() error {
		var err error
		if pc, err = gonet.ListenPacket("udp4", "127.0.0.11:53"); err != nil {
			return err
		}
		if ln, err = gonet.Listen("tcp4", "127.0.0.11:53"); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded DNS: %w", err)
	}
	h := &dnsHandler{m: m, id: sb.ID, upstream: upstreams(host, sb.join.DNS)}
	d := &dnsServer{servers: []*dns.Server{
		{PacketConn: pc, Handler: h, UDPSize: dns.DefaultMsgSize},
		{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}}
	for _, s := range d.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				m.log.Debug("embedded DNS stopped", "container", sb.ID, "err", err)
			}
		}()
		<-started // Shutdown before the server started would fail
	}
	return d, nil
}

type dnsHandler struct {
	m        *Manager
	id       string
	upstream []string
}

func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer w.Close()
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotImplemented)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	if q.Qclass == dns.ClassINET && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
		if addrs, ok := h.m.resolve(h.id, q.Name); ok {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			m.RecursionAvailable = true
			if q.Qtype != dns.TypeAAAA {
				for _, a := range addrs {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL}, A: a.AsSlice()})
				}
			}
			w.WriteMsg(m)
			return
		}
	}
	w.WriteMsg(h.forward(r, w.RemoteAddr().Network() == "tcp"))
}

// forward asks the upstream resolvers in turn; over TCP when the client
// used TCP or the UDP answer was truncated.
func (h *dnsHandler) forward(r *dns.Msg, tcp bool) *dns.Msg {
	for _, up := range h.upstream {
		c := &dns.Client{Net: "udp", Timeout: 3 * time.Second, UDPSize: dns.DefaultMsgSize}
		if tcp {
			c.Net = "tcp"
		}
		resp, _, err := c.Exchange(r, up)
		if err == nil && resp.Truncated && !tcp {
			c.Net = "tcp"
			resp, _, err = c.Exchange(r, up)
		}
		if err == nil {
			return resp
		}
		h.m.log.Debug("embedded DNS: upstream failed", "upstream", up, "name", r.Question[0].Name, "err", err)
	}
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}

// resolve answers name for the container id: the containers on its
// networks by name, short or full ID and alias, and host.docker.internal.
func (m *Manager) resolve(id, name string) ([]netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == "host.docker.internal" || name == "gateway.docker.internal" {
		return []netip.Addr{m.hostGatewayLocked()}, true
	}
	sb, ok := m.sandboxes[id]
	if !ok {
		return nil, false
	}
	var out []netip.Addr
	for netID := range sb.eps {
		n, ok := m.nets[netID]
		if !ok || !n.userDefined() {
			continue
		}
		for cid, ep := range n.eps {
			if matches(name, cid, ep) {
				out = append(out, ep.ip)
			}
		}
	}
	return out, len(out) > 0
}

func matches(name, id string, ep *endpoint) bool {
	if strings.EqualFold(name, ep.name) || (len(name) >= 12 && strings.HasPrefix(id, name)) {
		return true
	}
	for _, a := range ep.aliases {
		if strings.EqualFold(name, a) {
			return true
		}
	}
	return false
}
