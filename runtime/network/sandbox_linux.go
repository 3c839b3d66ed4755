//go:build linux

package network

import (
	"errors"
	"fmt"
	gonet "net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// JoinRequest describes a starting container's networking.
type JoinRequest struct {
	ID, Name, Hostname string
	// Mode is HostConfig.NetworkMode with a container: reference resolved
	// to the full ID by the caller ("container:<id>").
	Mode ctr.NetworkMode
	// Endpoints are the networks to join, keyed by network name, with the
	// user's settings (aliases, --ip); empty means the Mode's network.
	Endpoints    map[string]*network.EndpointSettings
	PortBindings network.PortMap
	PublishAll   bool
	Exposed      network.PortSet
	DNS          []string
	DNSSearch    []string
	DNSOptions   []string
}

// Sandbox is a running container's network: its namespace, its endpoints
// on networks and its published ports, plus the /etc/hosts entries and
// /etc/resolv.conf that go with them.
type Sandbox struct {
	ID   string
	Path string // bind mount of the network namespace; "" for the host's
	// Ports are the exposed ports with their host bindings (nil when not
	// published), as NetworkSettings.Ports reports them.
	Ports network.PortMap
	// HostsEntries are "IP\tname" lines for the container's /etc/hosts:
	// its own address and host.docker.internal.
	HostsEntries []string
	ResolvConf   []byte
	Host         bool // the host's network namespace (--network host)

	mu       sync.Mutex                           // guards networks (network connect/disconnect)
	networks map[string]*network.EndpointSettings // by network name
	owned    bool                                 // Path was made for this container (not container:<id>)
	eps      map[string]*endpoint                 // by network ID
	bindings []portKey
	dns      *dnsServer
	join     JoinRequest // what made it: its --dns settings, for the embedded DNS and resolv.conf
}

// endpoint is a container's attachment to one network.
type endpoint struct {
	id        string
	container string
	name      string
	aliases   []string
	ip        netip.Addr
	mac       gonet.HardwareAddr
	veth      string // host side
}

// Join gives a starting container its network. The caller must Leave once
// the container has stopped (also when its start fails later on).
func (m *Manager) Join(req JoinRequest) (*Sandbox, error) {
	began := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sandboxes[req.ID]; ok {
		m.leaveLocked(req.ID) // a leftover of a run whose teardown failed
	}
	sb := &Sandbox{ID: req.ID, networks: map[string]*network.EndpointSettings{}, Ports: network.PortMap{}, eps: map[string]*endpoint{}, join: req}
	mode := req.Mode
	switch {
	case mode.IsHost():
		sb.Host = true
		sb.ResolvConf = resolvConf(hostResolvConf(), req, false)
		sb.HostsEntries = []string{m.hostGatewayLocked().String() + "\thost.docker.internal"}
		m.sandboxes[req.ID] = sb
		return sb, nil
	case mode.IsContainer():
		other, ok := m.sandboxes[mode.ConnectedContainer()]
		if !ok {
			return nil, errdefs.Conflict("cannot join network namespace of container %s: it is not running", mode.ConnectedContainer())
		}
		if other.Host {
			return nil, errdefs.Conflict("cannot join network namespace of container %s: it uses the host's network", mode.ConnectedContainer())
		}
		sb.Path, sb.ResolvConf, sb.HostsEntries = other.Path, other.ResolvConf, other.HostsEntries
		m.sandboxes[req.ID] = sb
		return sb, nil
	}

	sb.owned = true
	m.sandboxes[req.ID] = sb
	fail := func(err error) (*Sandbox, error) {
		m.leaveLocked(req.ID)
		return nil, err
	}
	var nets []joinNet
	if sp := m.takeSpareLocked(req); sp != nil {
		sb.Path = sp.path
		nets = []joinNet{{n: sp.net, cfg: req.Endpoints[network.NetworkBridge]}}
		m.addEndpointLocked(sb, sp.net, sp.ep, nets[0].cfg, req)
	} else {
		sb.Path = filepath.Join(m.cfg.Root, "netns", req.ID)
		h, err := newSandboxNetns(sb.Path)
		if err != nil {
			return fail(err)
		}
		defer h.Close()
		if mode.IsNone() {
			sb.ResolvConf = resolvConf(hostResolvConf(), req, false)
			return sb, nil
		}
		if nets, err = m.joinOrder(req); err != nil {
			return fail(err)
		}
		for i, j := range nets {
			ep, err := m.attachLocked(h, sb, j.n, j.cfg, req, i)
			if err != nil {
				return fail(err)
			}
			m.addEndpointLocked(sb, j.n, ep, j.cfg, req)
		}
	}
	embedded := false
	for _, j := range nets {
		embedded = embedded || j.n.userDefined()
	}
	primary := sb.eps[nets[0].n.rec.ID]
	sb.HostsEntries = append(sb.HostsEntries, primary.ip.String()+"\t"+req.Hostname, m.hostGatewayLocked().String()+"\thost.docker.internal")
	if err := m.publishLocked(sb, req, primary.ip); err != nil {
		return fail(err)
	}
	host := hostResolvConf()
	sb.ResolvConf = resolvConf(host, req, embedded)
	if embedded {
		var err error
		if sb.dns, err = m.startDNS(sb, host); err != nil {
			return fail(err)
		}
	}
	if nets[0].n.rec.Name == network.NetworkBridge {
		m.refillLocked()
	}
	m.log.Debug("network joined", "container", req.ID, "networks", len(nets), "took", time.Since(began))
	return sb, nil
}

// Endpoints are the container's endpoints, by network name, as inspect's
// NetworkSettings.Networks reports them.
func (sb *Sandbox) Endpoints() map[string]*network.EndpointSettings {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	out := make(map[string]*network.EndpointSettings, len(sb.networks))
	for k, v := range sb.networks {
		out[k] = v.Copy()
	}
	return out
}

// Connect attaches a running container to one more network. When that is
// the container's first user-defined network, the container gets the
// embedded DNS server, as with dockerd, and Connect returns the new
// /etc/resolv.conf that points to it (else nil).
func (m *Manager) Connect(id, name, ref string, cfg *network.EndpointSettings) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return nil, errdefs.Conflict("container %s is not running", id)
	}
	n, err := m.getLocked(ref)
	if err != nil {
		return nil, err
	}
	if sb.Host || !sb.owned {
		return nil, errdefs.Forbidden("container sharing another network namespace cannot be connected to networks")
	}
	if !n.isBridge() {
		return nil, errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := sb.eps[n.rec.ID]; ok {
		return nil, errdefs.Forbidden("endpoint with name %s already exists in network %s", name, n.rec.Name)
	}
	h, err := nsHandle(sb.Path)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ep, err := m.attachLocked(h, sb, n, cfg, JoinRequest{ID: id, Name: name}, len(sb.eps))
	if err != nil {
		m.detachLocked(sb, n, true)
		return nil, err
	}
	m.addEndpointLocked(sb, n, ep, cfg, JoinRequest{ID: id, Name: name})
	if sb.dns != nil || !n.userDefined() {
		return nil, nil
	}
	host := hostResolvConf()
	if sb.dns, err = m.startDNS(sb, host); err != nil {
		m.detachLocked(sb, n, true)
		return nil, err
	}
	sb.ResolvConf = resolvConf(host, sb.join, true)
	return sb.ResolvConf, nil
}

// Disconnect detaches a running container from a network.
func (m *Manager) Disconnect(id, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return errdefs.Conflict("container %s is not running", id)
	}
	n, err := m.getLocked(ref)
	if err != nil {
		return err
	}
	if _, ok := sb.eps[n.rec.ID]; !ok {
		return errdefs.As(errdefs.KindUnknown, fmt.Errorf("container %s is not connected to network %s", id, n.rec.Name))
	}
	m.detachLocked(sb, n, true)
	return nil
}

// detachLocked removes sb's endpoint on n: its address and, with delVeth,
// its veth (else the caller reaps it). It returns the veth's name.
func (m *Manager) detachLocked(sb *Sandbox, n *net, delVeth bool) string {
	ep, ok := n.eps[sb.ID]
	if !ok {
		return ""
	}
	if delVeth {
		m.deleteVeth(sb.ID, ep.veth)
	}
	delete(n.used, ep.ip)
	delete(n.eps, sb.ID)
	delete(sb.eps, n.rec.ID)
	sb.mu.Lock()
	delete(sb.networks, n.rec.Name)
	sb.mu.Unlock()
	m.cfg.Events.Publish(events.NetworkEventType, events.ActionDisconnect, n.rec.ID, map[string]string{"container": sb.ID, "name": n.rec.Name, "type": "bridge"})
	return ep.veth
}

func (m *Manager) deleteVeth(id, name string) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return // gone with its namespace
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		m.log.Warn("delete veth", "container", id, "veth", name, "err", err)
	}
}

// reap deletes the veths of a container that left, in the background.
// Deleting a link waits out RCU grace periods (20-30 ms on these 2-core
// hosts), time that would otherwise sit between a container's exit and
// its wait answering; nothing needs the link gone sooner (its address is
// free already, and veth names are never reused). Usually the kernel has
// deleted the pair with the namespace by then; this makes sure of it
// should something still hold the namespace open.
func (m *Manager) reap(id string, veths []string) {
	if len(veths) == 0 {
		return
	}
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		for _, v := range veths {
			m.deleteVeth(id, v)
		}
	}()
}

type joinNet struct {
	n   *net
	cfg *network.EndpointSettings
}

// joinOrder resolves the networks to join; the Mode's network comes first
// (its address is the one published ports lead to).
func (m *Manager) joinOrder(req JoinRequest) ([]joinNet, error) {
	primary := string(req.Mode)
	if req.Mode.IsDefault() || primary == "" {
		primary = network.NetworkBridge
	}
	var out []joinNet
	seen := map[string]bool{}
	add := func(ref string, cfg *network.EndpointSettings) error {
		n, err := m.getLocked(ref)
		if err != nil {
			return errdefs.NotFound("network %s not found", ref)
		}
		if seen[n.rec.ID] {
			return nil
		}
		if !n.isBridge() {
			return errdefs.InvalidArgument("container cannot be connected to network %s and others: it uses the %s driver", n.rec.Name, n.rec.Driver)
		}
		seen[n.rec.ID] = true
		out = append(out, joinNet{n: n, cfg: cfg})
		return nil
	}
	if err := add(primary, req.Endpoints[primary]); err != nil {
		return nil, err
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range req.Endpoints {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		if err := add(name, req.Endpoints[name]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// attachLocked puts the container on n: an address, a veth pair with its
// end in the namespace as ethN, and a default route for the first.
func (m *Manager) attachLocked(h *netlink.Handle, sb *Sandbox, n *net, cfg *network.EndpointSettings, req JoinRequest, index int) (*endpoint, error) {
	if !n.up {
		if err := m.bridgeUp(n); err != nil {
			return nil, err
		}
	}
	var want netip.Addr
	if cfg != nil && cfg.IPAMConfig != nil && cfg.IPAMConfig.IPv4Address.IsValid() {
		want = cfg.IPAMConfig.IPv4Address
		if !n.userDefined() {
			return nil, errdefs.InvalidArgument("user specified IP address is supported on user defined networks only")
		}
	}
	ip, err := n.allocate(want, req.ID)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{id: newID(), container: req.ID, name: req.Name, ip: ip, mac: macFor(ip), veth: m.vethName()}
	if cfg != nil {
		ep.aliases = slices.Clone(cfg.Aliases)
		if len(cfg.MacAddress) > 0 {
			ep.mac = gonet.HardwareAddr(slices.Clone(cfg.MacAddress)) // --mac-address
		}
	}
	n.eps[req.ID] = ep // from here on, leaveLocked undoes it
	err = plug(h, sb.Path, fmt.Sprintf("eth%d", index), ep, n.bridgeIndex, n.rec.Subnet.Bits(), n.rec.Gateway, index == 0 && !n.rec.Internal)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.rec.Name, err)
	}
	return ep, nil
}

// addEndpointLocked records ep, attached for req, on n and in sb.
func (m *Manager) addEndpointLocked(sb *Sandbox, n *net, ep *endpoint, cfg *network.EndpointSettings, req JoinRequest) {
	sb.eps[n.rec.ID] = ep
	sb.mu.Lock()
	sb.networks[n.rec.Name] = endpointSettings(n, ep, cfg)
	sb.mu.Unlock()
	m.cfg.Events.Publish(events.NetworkEventType, events.ActionConnect, n.rec.ID, map[string]string{"container": req.ID, "name": n.rec.Name, "type": "bridge"})
}

// newSandboxNetns makes a container's network namespace at path with its
// loopback up, and returns a netlink handle in it.
func newSandboxNetns(path string) (*netlink.Handle, error) {
	if err := newNetns(path); err != nil {
		return nil, err
	}
	h, err := nsHandle(path)
	if err != nil {
		return nil, err
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("loopback up: %w", err)
	}
	return h, nil
}

// plug connects the namespace at nsPath (h is a handle in it) to a bridge:
// a veth pair made with its peer already in the namespace (one
// RTM_NEWLINK, no move), named peer there, with ep's MAC and address, and
// with defaultRoute a default route through gw.
func plug(h *netlink.Handle, nsPath, peer string, ep *endpoint, bridgeIndex, bits int, gw netip.Addr, defaultRoute bool) error {
	nsFile, err := os.Open(nsPath)
	if err != nil {
		return err
	}
	defer nsFile.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: ep.veth, MTU: 1500, TxQLen: -1, Flags: gonet.FlagUp, MasterIndex: bridgeIndex},
		PeerName:  peer, PeerHardwareAddr: ep.mac, PeerNamespace: netlink.NsFd(int(nsFile.Fd())), PeerMTU: 1500,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth: %w", err)
	}
	link, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(ep.ip, bits)}); err != nil {
		return fmt.Errorf("address %s: %w", ep.ip, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", peer, err)
	}
	if defaultRoute {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

func endpointSettings(n *net, ep *endpoint, cfg *network.EndpointSettings) *network.EndpointSettings {
	es := &network.EndpointSettings{}
	if cfg != nil {
		es = cfg.Copy()
	}
	es.NetworkID, es.EndpointID = n.rec.ID, ep.id
	es.Gateway, es.IPAddress, es.IPPrefixLen = n.rec.Gateway, ep.ip, n.rec.Subnet.Bits()
	es.MacAddress = network.HardwareAddr(ep.mac)
	if n.userDefined() {
		es.DNSNames = append([]string{ep.name, ep.container[:12]}, ep.aliases...)
	}
	return es
}

func nsHandle(path string) (*netlink.Handle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns: %w", err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("netlink in netns: %w", err)
	}
	return h, nil
}

// vethName is a fresh host-side veth name: vTAG + 8 hex digits.
func (m *Manager) vethName() string {
	return "v" + m.tag + newID()[:8]
}

// macFor derives a locally administered MAC from an IPv4 address, as
// dockerd long did (02:42:ac:11:00:02 for 172.17.0.2): unique on a subnet.
func macFor(ip netip.Addr) gonet.HardwareAddr {
	b := ip.As4()
	return gonet.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// Leave tears down a container's network: its DNS server, published
// ports, endpoints and namespace. It is a no-op for unknown containers.
func (m *Manager) Leave(id string) {
	began := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaveLocked(id)
	m.log.Debug("network left", "container", id, "took", time.Since(began))
}

func (m *Manager) leaveLocked(id string) {
	sb, ok := m.sandboxes[id]
	if !ok {
		return
	}
	delete(m.sandboxes, id)
	if sb.dns != nil {
		sb.dns.close()
	}
	if len(sb.bindings) > 0 {
		for _, k := range sb.bindings {
			if b, ok := m.ports[k]; ok && b.container == id {
				b.close()
				delete(m.ports, k)
			}
		}
		if err := m.applyNATLocked(); err != nil {
			m.log.Warn("nat rules", "container", id, "err", err)
		}
	}
	var veths []string
	for _, n := range m.nets {
		if v := m.detachLocked(sb, n, false); v != "" {
			veths = append(veths, v)
		}
	}
	if sb.owned {
		if err := removeNetns(sb.Path); err != nil {
			m.log.Warn("remove netns", "container", id, "err", err)
		}
	}
	m.reap(id, veths)
}

// allocate hands out want, or the next free address of the network.
func (n *net) allocate(want netip.Addr, id string) (netip.Addr, error) {
	pool := n.rec.Subnet
	if n.rec.IPRange.IsValid() {
		pool = n.rec.IPRange
	}
	usable := func(a netip.Addr) bool {
		return n.rec.Subnet.Contains(a) && a != n.rec.Gateway && a != n.rec.Subnet.Addr() && a != lastAddr(n.rec.Subnet)
	}
	if want.IsValid() {
		if !usable(want) {
			return netip.Addr{}, errdefs.InvalidArgument("invalid address %s: not usable in network %s (%s)", want, n.rec.Name, n.rec.Subnet)
		}
		if other, ok := n.used[want]; ok {
			return netip.Addr{}, errdefs.Conflict("Address already in use: %s is held by container %s", want, other[:12])
		}
		n.used[want] = id
		return want, nil
	}
	start := n.next
	if !pool.Contains(start) {
		start = pool.Addr()
	}
	a := start
	for {
		if usable(a) {
			if _, taken := n.used[a]; !taken {
				n.used[a] = id
				n.next = a.Next()
				return a, nil
			}
		}
		a = a.Next()
		if !pool.Contains(a) {
			a = pool.Addr()
		}
		if a == start {
			return netip.Addr{}, errdefs.Unavailable("no available IPv4 addresses on network %s", n.rec.Name)
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HostGateway is the address host.docker.internal and host-gateway mean.
func (m *Manager) HostGateway() netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hostGatewayLocked()
}

func (m *Manager) hostGatewayLocked() netip.Addr {
	if m.cfg.HostGateway.IsValid() {
		return m.cfg.HostGateway
	}
	if n := m.byNameLocked(network.NetworkBridge); n != nil {
		return n.rec.Gateway
	}
	return netip.MustParseAddr("127.0.0.1")
}

// Sandbox returns a running container's network (nil if it has none).
func (m *Manager) Sandbox(id string) *Sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sandboxes[id]
}

// Counts reports the host objects the engine holds, for leak tests and
// /info: veths on its bridges, network namespaces, published ports.
func (m *Manager) Counts() (veths, namespaces, ports int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		veths += len(n.eps)
	}
	for _, sb := range m.sandboxes {
		if sb.owned {
			namespaces++
		}
	}
	return veths, namespaces, len(m.ports)
}

// hostResolvConf is the host's resolver configuration.
func hostResolvConf() []byte {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	return b
}

// resolvConf makes a container's /etc/resolv.conf as dockerd does: on user
// networks the embedded server at 127.0.0.11; elsewhere the host's
// resolvers that a container can reach (not loopback ones), else Google's.
// --dns, --dns-search and --dns-option replace the host's.
func resolvConf(host []byte, req JoinRequest, embedded bool) []byte {
	var ns, search, opts []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() && a.Is4() {
				ns = append(ns, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if req.Mode.IsHost() {
		ns = nil // the host's own, loopback ones included, are reachable
		for _, line := range strings.Split(string(host), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
				ns = append(ns, f[1])
			}
		}
	}
	if len(req.DNS) > 0 {
		ns = req.DNS
	}
	if len(req.DNSSearch) > 0 {
		search = req.DNSSearch
	}
	if len(req.DNSOptions) > 0 {
		opts = req.DNSOptions
	}
	if embedded {
		ns = []string{"127.0.0.11"}
		if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
			opts = append(opts, "ndots:0")
		}
	} else if len(ns) == 0 {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	var b strings.Builder
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return []byte(b.String())
}

// upstreams are the resolvers the embedded DNS server forwards to: --dns,
// else the host's (loopback ones too: the server runs in the host's
// network namespace).
func upstreams(host []byte, dns []string) []string {
	list := dns
	if len(list) == 0 {
		for _, line := range strings.Split(string(host), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
				list = append(list, f[1])
			}
		}
	}
	var out []string
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, gonet.JoinHostPort(a.String(), "53"))
		}
	}
	return out
}
