//go:build linux

// Package network gives containers their networks: the default bridge and
// user-defined bridge networks (a Linux bridge each, outbound NAT and
// published ports with nftables), a network namespace per container with a
// veth on its bridge, the embedded DNS server of user networks, and the
// contents of each container's /etc/hosts and /etc/resolv.conf.
//
// Everything is done from Go through netlink and nf_tables, so it works the
// same in the VM's minimal image (no ip, iptables or nft binaries) and on a
// Linux host. The host's own firewall rules are never touched: the engine
// keeps its rules in one nftables table of its own.
package network

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
	evbus "github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/filters"
	"github.com/berth-dev/berth/runtime/fsutil"
)

// Config configures a Manager.
type Config struct {
	// Root holds the network records (ROOT/network) and the containers'
	// network namespace mounts (Root/netns).
	Root string
	// HostGateway is the address host.docker.internal and --add-host
	// NAME:host-gateway resolve to. Natively it is left empty and the
	// default bridge's gateway (the host itself) is used; in the VM PID 1
	// passes the host's address on the user-mode network (10.0.2.2).
	HostGateway netip.Addr
	Events      *evbus.Bus
	Log         *slog.Logger
}

// record is one network as kept on disk, in Root/networks/<id>.json.
type record struct {
	ID       string
	Name     string
	Driver   string // bridge, host or null
	Created  time.Time
	Internal bool
	Labels   map[string]string
	Options  map[string]string
	// Subnet and Gateway are the bridge's; AutoSubnet marks a subnet chosen
	// by the engine, which may be chosen again should it collide with a
	// route that appeared on the host since.
	Subnet     netip.Prefix
	Gateway    netip.Addr
	AutoSubnet bool
	IPRange    netip.Prefix `json:",omitzero"`
}

// net is a network with its live state.
type net struct {
	rec         record
	bridge      string                  // interface name; "" for host and null
	bridgeIndex int                     // its interface index, once up
	up          bool                    // bridge exists and is configured
	eps         map[string]*endpoint    // by container ID
	used        map[netip.Addr]string   // address → container ID
	next        netip.Addr              // where the next allocation starts looking
	static      map[netip.Addr]struct{} // addresses asked for with --ip, never handed out
}

func (n *net) isBridge() bool { return n.rec.Driver == "bridge" }

// userDefined reports whether the network was created by a user: only those
// get the embedded DNS server, as with dockerd.
func (n *net) userDefined() bool { return n.isBridge() && n.rec.Name != network.NetworkBridge }

// Manager owns every network and every container's network sandbox.
type Manager struct {
	cfg Config
	log *slog.Logger
	tag string // 6 hex digits of Root: bridge, veth and nft table names

	mu        sync.Mutex
	nets      map[string]*net      // by ID
	sandboxes map[string]*Sandbox  // by container ID
	ports     map[portKey]*binding // published ports in use
	nat       *nat
	bg        sync.WaitGroup // veth deletions of containers that left, the spare's making
	spare     *spare         // made ahead for the next container on the default bridge
	making    bool           // a spare is being made
	closed    bool
}

// New opens the network store under cfg.Root. It sweeps what a crash of
// the engine left (veths, namespace mounts, bridges, its nftables table):
// containers never outlive the engine, so nothing live can be lost.
func New(cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("network: no root given")
	}
	if cfg.Events == nil {
		cfg.Events = evbus.New()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	for _, d := range []string{filepath.Join(cfg.Root, "networks"), filepath.Join(cfg.Root, "netns")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	sum := sha256.Sum256([]byte(filepath.Clean(cfg.Root)))
	m := &Manager{cfg: cfg, log: cfg.Log, tag: hex.EncodeToString(sum[:3]),
		nets: map[string]*net{}, sandboxes: map[string]*Sandbox{}, ports: map[portKey]*binding{}}
	m.nat = newNAT("berth-" + m.tag)
	if err := m.load(); err != nil {
		return nil, err
	}
	m.sweep()
	return m, nil
}

// Tag is the short name this engine gives its host-global network objects:
// bridges are br-TAG-*, veths vTAG*, the nftables table berth-TAG.
func (m *Manager) Tag() string { return m.tag }

// load reads the network records, creating the predefined networks (bridge,
// host, none) on first start.
func (m *Manager) load() error {
	dir := filepath.Join(m.cfg.Root, "networks")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil || rec.ID == "" || rec.Name == "" {
			m.log.Error("skipping unreadable network record", "file", e.Name(), "err", err)
			continue
		}
		m.add(rec)
	}
	for name, driver := range map[string]string{network.NetworkBridge: "bridge", network.NetworkHost: "host", network.NetworkNone: "null"} {
		if m.byNameLocked(name) != nil {
			continue
		}
		rec := record{ID: newID(), Name: name, Driver: driver, Created: time.Now().UTC(), Labels: map[string]string{}, Options: map[string]string{}}
		if driver == "bridge" {
			rec.AutoSubnet = true
			rec.Options = map[string]string{
				"com.docker.network.bridge.default_bridge":       "true",
				"com.docker.network.bridge.enable_icc":           "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true",
				"com.docker.network.driver.mtu":                  "1500",
			}
			if err := m.pickSubnet(&rec); err != nil {
				return err
			}
		}
		if err := m.save(rec); err != nil {
			return err
		}
		m.add(rec)
	}
	return nil
}

func (m *Manager) add(rec record) *net {
	n := &net{rec: rec, eps: map[string]*endpoint{}, used: map[netip.Addr]string{}, static: map[netip.Addr]struct{}{}}
	if n.isBridge() {
		if rec.Name == network.NetworkBridge {
			n.bridge = "br-" + m.tag + "-0"
			n.rec.Options["com.docker.network.bridge.name"] = n.bridge
			// Ports published without an address listen on all of them.
			n.rec.Options["com.docker.network.bridge.host_binding_ipv4"] = "0.0.0.0"
		} else {
			n.bridge = "br-" + m.tag + "-" + rec.ID[:5]
		}
	}
	m.nets[rec.ID] = n
	return n
}

func (m *Manager) save(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("network %s: encode: %w", rec.Name, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(m.cfg.Root, "networks", rec.ID+".json"), b, 0o600); err != nil {
		return fmt.Errorf("network %s: save: %w", rec.Name, err)
	}
	return nil
}

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (m *Manager) byNameLocked(name string) *net {
	for _, n := range m.nets {
		if n.rec.Name == name {
			return n
		}
	}
	return nil
}

// getLocked finds a network by name, full ID or unique ID prefix, as dockerd
// does (a name wins over an ID prefix).
func (m *Manager) getLocked(ref string) (*net, error) {
	if ref == "" {
		return nil, errdefs.InvalidArgument("no network name or ID given")
	}
	if ref == network.NetworkDefault {
		ref = network.NetworkBridge
	}
	if n, ok := m.nets[ref]; ok {
		return n, nil
	}
	if n := m.byNameLocked(ref); n != nil {
		return n, nil
	}
	var found *net
	for id, n := range m.nets {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.NotFound("network %s is ambiguous", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("network %s not found", ref)
	}
	return found, nil
}

var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a user-defined bridge network. Its bridge is brought up when
// its first container starts.
func (m *Manager) Create(req network.CreateRequest) (network.CreateResponse, error) {
	if req.Name == "" {
		return network.CreateResponse{}, errdefs.InvalidArgument("network name is required")
	}
	if !validNetworkName.MatchString(req.Name) {
		return network.CreateResponse{}, errdefs.InvalidArgument("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	switch req.Name {
	case network.NetworkBridge, network.NetworkHost, network.NetworkNone, network.NetworkDefault:
		return network.CreateResponse{}, errdefs.Forbidden("operation is not permitted on predefined %s network ", req.Name)
	}
	switch req.Driver {
	case "", "bridge":
	case "overlay": // what dockerd answers when it is not a swarm manager
		return network.CreateResponse{}, errdefs.Forbidden(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)
	case "macvlan", "ipvlan", "host", "null":
		return network.CreateResponse{}, errdefs.NotImplemented("network driver %q is not supported: this engine has bridge networks", req.Driver)
	default: // dockerd looks for a network plugin of that name
		return network.CreateResponse{}, errdefs.NotFound("plugin %q not found", req.Driver)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress || (req.Scope != "" && req.Scope != "local") {
		return network.CreateResponse{}, errdefs.NotImplemented("config-only, ingress and swarm-scoped networks are not supported")
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return network.CreateResponse{}, errdefs.NotImplemented("IPv6 networks are not supported yet")
	}
	rec := record{ID: newID(), Name: req.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: req.Internal,
		Labels: maps.Clone(req.Labels), Options: maps.Clone(req.Options)}
	if rec.Labels == nil {
		rec.Labels = map[string]string{}
	}
	if rec.Options == nil {
		rec.Options = map[string]string{}
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return network.CreateResponse{}, errdefs.NotImplemented("IPAM driver %q is not supported", req.IPAM.Driver)
		}
		var v4 []network.IPAMConfig
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
				v4 = append(v4, c)
			}
		}
		if len(v4) > 1 {
			return network.CreateResponse{}, errdefs.NotImplemented("more than one IPv4 subnet per network is not supported")
		}
		if len(v4) == 1 {
			if err := fixedSubnet(&rec, v4[0]); err != nil {
				return network.CreateResponse{}, err
			}
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byNameLocked(req.Name) != nil {
		return network.CreateResponse{}, errdefs.Conflict("network with name %s already exists", req.Name)
	}
	if rec.Subnet.IsValid() {
		for _, o := range m.nets {
			if o.isBridge() && o.rec.Subnet.Overlaps(rec.Subnet) {
				return network.CreateResponse{}, errdefs.Conflict("invalid pool request: Pool overlaps with other one on this address space")
			}
		}
	} else {
		rec.AutoSubnet = true
		if err := m.pickSubnet(&rec); err != nil {
			return network.CreateResponse{}, err
		}
	}
	if err := m.save(rec); err != nil {
		return network.CreateResponse{}, err
	}
	n := m.add(rec)
	m.cfg.Events.Publish(events.NetworkEventType, events.ActionCreate, rec.ID, map[string]string{"name": rec.Name, "type": "bridge"})
	m.log.Debug("network created", "name", rec.Name, "subnet", rec.Subnet, "bridge", n.bridge)
	return network.CreateResponse{ID: rec.ID}, nil
}

// fixedSubnet applies a user's --subnet, --gateway and --ip-range.
func fixedSubnet(rec *record, c network.IPAMConfig) error {
	p := c.Subnet.Masked()
	if p != c.Subnet {
		return errdefs.InvalidArgument("invalid subnet %s: it should be %s", c.Subnet, p)
	}
	if p.Bits() > 30 {
		return errdefs.InvalidArgument("invalid subnet %s: too small for a gateway and containers", p)
	}
	rec.Subnet = p
	rec.Gateway = p.Addr().Next()
	if c.Gateway.IsValid() {
		if !p.Contains(c.Gateway) {
			return errdefs.InvalidArgument("invalid gateway %s: not in subnet %s", c.Gateway, p)
		}
		rec.Gateway = c.Gateway
	}
	if c.IPRange.IsValid() {
		if !p.Contains(c.IPRange.Addr()) || c.IPRange.Bits() < p.Bits() {
			return errdefs.InvalidArgument("invalid ip range %s: not within subnet %s", c.IPRange, p)
		}
		rec.IPRange = c.IPRange.Masked()
	}
	return nil
}

// Remove deletes a user-defined network that no running container uses.
func (m *Manager) Remove(ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return err
	}
	return m.removeLocked(n)
}

func (m *Manager) removeLocked(n *net) error {
	if !n.userDefined() {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.rec.Name)
	}
	if len(n.eps) > 0 {
		var users []string
		for id, ep := range n.eps {
			users = append(users, fmt.Sprintf("name:%q id:%q", ep.name, id[:12]))
		}
		slices.Sort(users)
		return errdefs.Forbidden("error while removing network: network %s has active endpoints (%s)", n.rec.Name, strings.Join(users, ", "))
	}
	if n.up {
		if err := m.bridgeDown(n); err != nil {
			return fmt.Errorf("remove network %s: %w", n.rec.Name, err)
		}
	}
	if err := os.Remove(filepath.Join(m.cfg.Root, "networks", n.rec.ID+".json")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove network %s: %w", n.rec.Name, err)
	}
	delete(m.nets, n.rec.ID)
	m.cfg.Events.Publish(events.NetworkEventType, events.ActionDestroy, n.rec.ID, map[string]string{"name": n.rec.Name, "type": "bridge"})
	return nil
}

// Prune removes user-defined networks no running container uses and that
// match f (label, label!, until).
func (m *Manager) Prune(f filters.Args, inUse func(name string) bool) (network.PruneReport, error) {
	if err := f.Validate("label", "label!", "until"); err != nil {
		return network.PruneReport{}, err
	}
	until, err := untilFilter(f)
	if err != nil {
		return network.PruneReport{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range m.sortedLocked() {
		if !n.userDefined() || len(n.eps) > 0 || (inUse != nil && inUse(n.rec.Name)) {
			continue
		}
		if !f.MatchLabels("label", n.rec.Labels) || (f.Has("label!") && f.MatchLabels("label!", n.rec.Labels)) {
			continue
		}
		if !until.IsZero() && !n.rec.Created.Before(until) {
			continue
		}
		if err := m.removeLocked(n); err != nil {
			m.log.Warn("prune network", "network", n.rec.Name, "err", err)
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.rec.Name)
	}
	m.cfg.Events.Publish(events.NetworkEventType, events.ActionPrune, "", map[string]string{"reclaimed": "0"})
	return rep, nil
}

func untilFilter(f filters.Args) (time.Time, error) {
	vals := f.Get("until")
	if len(vals) == 0 {
		return time.Time{}, nil
	}
	if len(vals) > 1 {
		return time.Time{}, errdefs.InvalidArgument("more than one until filter")
	}
	return filters.ParseTime(vals[0])
}

func (m *Manager) sortedLocked() []*net {
	out := slices.Collect(maps.Values(m.nets))
	slices.SortFunc(out, func(a, b *net) int { return strings.Compare(a.rec.Name, b.rec.Name) })
	return out
}

// Lookup resolves a network reference to its ID and name.
func (m *Manager) Lookup(ref string) (id, name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return "", "", err
	}
	return n.rec.ID, n.rec.Name, nil
}

var listFilters = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}

// List reports networks as GET /networks does. inUse tells whether a
// network has containers (running or not), for the dangling filter.
func (m *Manager) List(f filters.Args, inUse func(name string) bool) ([]network.Summary, error) {
	if err := f.Validate(listFilters...); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []network.Summary{}
	for _, n := range m.sortedLocked() {
		typ := "builtin"
		if n.userDefined() {
			typ = "custom"
		}
		switch {
		case !f.MatchPrefix("id", n.rec.ID):
			continue
		case f.Has("name") && !matchSubstring(f.Get("name"), n.rec.Name):
			continue
		case !f.Match("driver", n.rec.Driver):
			continue
		case !f.Match("scope", "local"):
			continue
		case !f.Match("type", typ):
			continue
		case !f.MatchLabels("label", n.rec.Labels):
			continue
		}
		if f.Has("dangling") {
			dangling := n.userDefined() && len(n.eps) == 0 && (inUse == nil || !inUse(n.rec.Name))
			if !f.Match("dangling", fmt.Sprint(dangling)) && !(dangling && f.Match("dangling", "1")) && !(!dangling && f.Match("dangling", "0")) {
				continue
			}
		}
		out = append(out, network.Summary{Network: m.describeLocked(n)})
	}
	return out, nil
}

func matchSubstring(wants []string, s string) bool {
	for _, w := range wants {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func (m *Manager) describeLocked(n *net) network.Network {
	out := network.Network{
		Name: n.rec.Name, ID: n.rec.ID, Created: n.rec.Created, Scope: "local", Driver: n.rec.Driver,
		EnableIPv4: true, Internal: n.rec.Internal, Options: maps.Clone(n.rec.Options), Labels: maps.Clone(n.rec.Labels),
		IPAM: network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.isBridge() {
		out.IPAM.Config = []network.IPAMConfig{{Subnet: n.rec.Subnet, Gateway: n.rec.Gateway, IPRange: n.rec.IPRange}}
	} else {
		out.EnableIPv4 = false
	}
	return out
}

// Inspect reports a network as GET /networks/{id} does.
func (m *Manager) Inspect(ref string) (network.Inspect, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.getLocked(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	out := network.Inspect{Network: m.describeLocked(n), Containers: map[string]network.EndpointResource{}}
	for id, ep := range n.eps {
		out.Containers[id] = network.EndpointResource{Name: ep.name, EndpointID: ep.id, MacAddress: network.HardwareAddr(ep.mac),
			IPv4Address: netip.PrefixFrom(ep.ip, n.rec.Subnet.Bits())}
	}
	return out, nil
}

// Close tears down every sandbox left (there are none once the containers
// have stopped), the bridges and the engine's nftables table.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	for id := range m.sandboxes {
		m.leaveLocked(id)
	}
	var errs []error
	for _, n := range m.nets {
		if n.up {
			if err := m.bridgeDown(n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := m.nat.apply(nil); err != nil {
		errs = append(errs, err)
	}
	m.mu.Unlock()
	m.bg.Wait() // a spare being made sees closed and undoes itself
	if len(errs) > 0 {
		return fmt.Errorf("network: close: %v", errs)
	}
	return nil
}
