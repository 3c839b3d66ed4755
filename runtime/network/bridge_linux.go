//go:build linux

package network

import (
	"errors"
	"fmt"
	gonet "net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// subnetPool is where networks without a --subnet get theirs, first free
// first, as dockerd's default address pools: 172.17-31.0.0/16, then
// 192.168.0-240.0/20. "Free" means overlapping neither a route of the host
// nor another network of this engine.
var subnetPool = func() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}()

// allocLock serialises subnet choice and bridge creation between the
// engines of one host (tests run several at once), so two engines never
// bring up the same subnet.
const allocLock = "/run/berth-network.lock"

func lockHost() (func(), error) {
	f, err := os.OpenFile(allocLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("network lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// hostRoutes lists the IPv4 destinations routed on the host other than
// through skip (a bridge of the network being checked).
func hostRoutes(skip string) ([]netip.Prefix, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	skipIndex := -1
	if l, err := netlink.LinkByName(skip); err == nil {
		skipIndex = l.Attrs().Index
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == skipIndex {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ones == 0 {
			continue // a default route collides with nothing
		}
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok {
			out = append(out, netip.PrefixFrom(a, ones).Masked())
		}
	}
	return out, nil
}

// pickSubnet gives rec the first free subnet of the pool. Call with m.mu
// held (or before the manager is shared).
func (m *Manager) pickSubnet(rec *record) error {
	routes, err := hostRoutes(m.bridgeName(rec))
	if err != nil {
		return err
	}
	taken := routes
	for _, n := range m.nets {
		if n.isBridge() && n.rec.ID != rec.ID && n.rec.Subnet.IsValid() {
			taken = append(taken, n.rec.Subnet)
		}
	}
	for _, p := range subnetPool {
		free := true
		for _, t := range taken {
			if t.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			rec.Subnet, rec.Gateway, rec.IPRange = p, p.Addr().Next(), netip.Prefix{}
			return nil
		}
	}
	return errdefs.Unavailable("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

func (m *Manager) bridgeName(rec *record) string {
	if n, ok := m.nets[rec.ID]; ok {
		return n.bridge
	}
	return ""
}

// bridgeUp creates and configures n's bridge, and the NAT rules that come
// with it. Call with m.mu held.
func (m *Manager) bridgeUp(n *net) error {
	unlock, err := lockHost()
	if err != nil {
		return err
	}
	defer unlock()
	routes, err := hostRoutes(n.bridge)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if !r.Overlaps(n.rec.Subnet) {
			continue
		}
		if !n.rec.AutoSubnet {
			return errdefs.Conflict("network %s: subnet %s overlaps the host's route to %s", n.rec.Name, n.rec.Subnet, r)
		}
		// A route appeared on the host since the subnet was chosen (or
		// another engine took it): choose again while nobody uses it.
		old := n.rec.Subnet
		if err := m.pickSubnet(&n.rec); err != nil {
			return err
		}
		if err := m.save(n.rec); err != nil {
			return err
		}
		m.log.Info("network subnet moved: the old one collides with a host route", "network", n.rec.Name, "old", old, "new", n.rec.Subnet, "route", r)
		break
	}
	if l, err := netlink.LinkByName(n.bridge); err == nil {
		netlink.LinkDel(l) // left by a crash, possibly with another subnet
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.bridge, MTU: 1500, TxQLen: -1}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("network %s: create bridge %s: %w", n.rec.Name, n.bridge, err)
	}
	fail := func(err error) error {
		netlink.LinkDel(br)
		return fmt.Errorf("network %s: bridge %s: %w", n.rec.Name, n.bridge, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(n.rec.Gateway, n.rec.Subnet.Bits())}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return fail(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fail(err)
	}
	n.bridgeIndex = br.Attrs().Index
	// Published ports are reached on 127.0.0.1 too: loopback-sourced
	// packets DNATed to a container may then leave through the bridge
	// (they are masqueraded there; the nft table drops anything else that
	// would use this to reach the host's loopback from a container).
	if err := writeSysctl("net/ipv4/conf/"+n.bridge+"/route_localnet", "1"); err != nil {
		return fail(err)
	}
	if err := enableForwarding(); err != nil {
		return fail(err)
	}
	n.up = true
	if err := m.applyNATLocked(); err != nil {
		n.up = false
		return fail(err)
	}
	m.log.Debug("bridge up", "network", n.rec.Name, "bridge", n.bridge, "subnet", n.rec.Subnet)
	return nil
}

// bridgeDown deletes n's bridge and its NAT rules. Call with m.mu held.
func (m *Manager) bridgeDown(n *net) error {
	n.up = false
	if m.spare != nil && m.spare.net == n {
		m.dropSpareLocked()
	}
	if err := m.applyNATLocked(); err != nil {
		m.log.Warn("nat rules", "err", err)
	}
	l, err := netlink.LinkByName(n.bridge)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", n.bridge, err)
	}
	return nil
}

func ipNet(a netip.Addr, bits int) *gonet.IPNet {
	return &gonet.IPNet{IP: a.AsSlice(), Mask: gonet.CIDRMask(bits, a.BitLen())}
}

func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", name)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == value {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}

// enableForwarding turns on IPv4 forwarding, which bridged containers need
// to reach anything beyond their bridge (dockerd does the same).
func enableForwarding() error { return writeSysctl("net/ipv4/ip_forward", "1") }

// sweep removes what a crash left: veths and bridges named for this
// engine, namespace mounts, and the nftables table.
func (m *Manager) sweep() {
	links, _ := netlink.LinkList()
	for _, l := range links {
		name := l.Attrs().Name
		if strings.HasPrefix(name, "v"+m.tag) || strings.HasPrefix(name, "br-"+m.tag+"-") {
			if err := netlink.LinkDel(l); err != nil {
				m.log.Warn("sweep link", "link", name, "err", err)
			}
		}
	}
	dir := filepath.Join(m.cfg.Root, "netns")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		removeNetns(filepath.Join(dir, e.Name()))
	}
	if err := m.nat.apply(nil); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("sweep nat table", "err", err)
	}
}
