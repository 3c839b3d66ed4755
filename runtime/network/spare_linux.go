//go:build linux

package network

import (
	"net/netip"
	"path/filepath"

	"github.com/moby/moby/api/types/network"
)

// A spare is a container network made ahead of time on the default bridge:
// a namespace with its loopback up and an endpoint plugged in (veth on the
// bridge, address, default route), all but the container. Making one costs
// a few netlink round trips that each wait on the kernel's rtnl lock,
// milliseconds that grow to tens on a busy host; the next `docker run` on
// the default bridge takes it at once, and another is made in the
// background while that container starts. Only the plain case is served
// this way (the default bridge alone, no --ip): anything else is made on
// demand as before.
type spare struct {
	path string // namespace mount
	net  *net
	ep   *endpoint // container and name are filled in when taken
}

// spareOwner stands for the spare's container in net.used.
const spareOwner = "spare"

// takeSpareLocked hands the spare to req if it fits, and starts making the
// next one. Call with m.mu held.
func (m *Manager) takeSpareLocked(req JoinRequest) *spare {
	sp := m.spare
	if sp == nil || !(req.Mode.IsDefault() || req.Mode.IsBridge() || req.Mode == "") {
		return nil
	}
	for name, cfg := range req.Endpoints {
		if name != network.NetworkBridge || cfg != nil && (cfg.IPAMConfig != nil && cfg.IPAMConfig.IPv4Address.IsValid() || len(cfg.MacAddress) > 0) {
			return nil
		}
	}
	if !sp.net.up {
		return nil
	}
	m.spare = nil
	sp.ep.container, sp.ep.name = req.ID, req.Name
	if cfg := req.Endpoints[network.NetworkBridge]; cfg != nil {
		sp.ep.aliases = cfg.Aliases
	}
	sp.net.used[sp.ep.ip] = req.ID
	sp.net.eps[req.ID] = sp.ep
	return sp
}

// refillLocked starts making a spare unless there is one (or one is being
// made). Call with m.mu held.
func (m *Manager) refillLocked() {
	n := m.byNameLocked(network.NetworkBridge)
	if m.spare != nil || m.making || m.closed || n == nil || !n.up {
		return
	}
	ip, err := n.allocate(netip.Addr{}, spareOwner)
	if err != nil {
		return // the network is full: containers come first
	}
	ep := &endpoint{id: newID(), ip: ip, mac: macFor(ip), veth: m.vethName()}
	sp := &spare{path: filepath.Join(m.cfg.Root, "netns", "spare-"+ep.id[:12]), net: n, ep: ep}
	index, bits, gw := n.bridgeIndex, n.rec.Subnet.Bits(), n.rec.Gateway
	m.making = true
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		err := makeSpare(sp, index, bits, gw)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.making = false
		if err != nil || m.closed || !n.up || n.bridgeIndex != index {
			if err != nil {
				m.log.Debug("spare network", "err", err)
			}
			m.destroySpareLocked(sp)
			return
		}
		m.spare = sp
	}()
}

func makeSpare(sp *spare, bridgeIndex, bits int, gw netip.Addr) error {
	h, err := newSandboxNetns(sp.path)
	if err != nil {
		return err
	}
	defer h.Close()
	return plug(h, sp.path, "eth0", sp.ep, bridgeIndex, bits, gw, true)
}

// dropSpareLocked undoes the spare, if any. Call with m.mu held.
func (m *Manager) dropSpareLocked() {
	if m.spare != nil {
		m.destroySpareLocked(m.spare)
		m.spare = nil
	}
}

func (m *Manager) destroySpareLocked(sp *spare) {
	if sp.net.used[sp.ep.ip] == spareOwner {
		delete(sp.net.used, sp.ep.ip)
	}
	if err := removeNetns(sp.path); err != nil {
		m.log.Warn("remove spare netns", "err", err)
	}
	m.reap(spareOwner, []string{sp.ep.veth})
}
