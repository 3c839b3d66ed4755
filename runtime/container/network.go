//go:build linux

package container

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
	bnet "github.com/berth-dev/berth/runtime/network"
)

// Networks gives containers their networks (runtime/network's Manager).
// Without one, containers get a private namespace with loopback only, or
// the host's with --network host.
type Networks interface {
	Join(bnet.JoinRequest) (*bnet.Sandbox, error)
	Leave(id string)
	Lookup(ref string) (id, name string, err error)
	HostGateway() netip.Addr
	// Connect returns the container's new /etc/resolv.conf when it changes.
	Connect(id, name, netRef string, cfg *network.EndpointSettings) (resolvConf []byte, err error)
	Disconnect(id, netRef string) error
}

// checkNetworking validates a create request's network settings and
// normalises them: the default mode becomes "bridge", network references
// become names, container: references must exist.
func (m *Manager) checkNetworking(hc *ctr.HostConfig, nc *network.NetworkingConfig, exposed network.PortSet) (*network.NetworkingConfig, error) {
	mode := hc.NetworkMode
	if mode == "" || mode.IsDefault() {
		hc.NetworkMode = network.NetworkBridge
		mode = hc.NetworkMode
	}
	for p, bs := range hc.PortBindings {
		if p.Num() == 0 || (p.Proto() != network.TCP && p.Proto() != network.UDP) {
			return nil, errdefs.InvalidArgument("invalid port %q: publish tcp or udp ports", p)
		}
		for _, b := range bs {
			if b.HostIP.IsValid() && !b.HostIP.Is4() && !b.HostIP.IsUnspecified() {
				return nil, errdefs.NotImplemented("publishing on IPv6 address %s is not supported", b.HostIP)
			}
		}
	}
	switch {
	case mode.IsHost(), mode.IsNone():
		if len(endpoints(nc)) > 0 && !(len(nc.EndpointsConfig) == 1 && nc.EndpointsConfig[string(mode)] != nil) {
			return nil, errdefs.InvalidArgument("container cannot be connected to other networks with network mode %s", mode)
		}
		return nc, nil
	case mode.IsContainer():
		if _, err := m.Get(mode.ConnectedContainer()); err != nil {
			return nil, err
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, errdefs.InvalidArgument("conflicting options: port publishing and the container type network mode")
		}
		return nc, nil
	}
	if m.cfg.Networks == nil {
		if !mode.IsBridge() {
			return nil, errdefs.NotImplemented("network %q: this engine has no networks", mode)
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, errdefs.NotImplemented("publishing ports needs the engine's networks")
		}
		return nc, nil
	}
	_, name, err := m.cfg.Networks.Lookup(string(mode))
	if err != nil {
		return nil, err
	}
	hc.NetworkMode = ctr.NetworkMode(name)
	out := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	for ref, es := range endpoints(nc) {
		_, n, err := m.cfg.Networks.Lookup(ref)
		if err != nil {
			return nil, err
		}
		out.EndpointsConfig[n] = es.Copy()
	}
	if _, ok := out.EndpointsConfig[name]; !ok {
		out.EndpointsConfig[name] = &network.EndpointSettings{}
	}
	return out, nil
}

func endpoints(nc *network.NetworkingConfig) map[string]*network.EndpointSettings {
	if nc == nil {
		return nil
	}
	return nc.EndpointsConfig
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// joinNetwork gives a starting container its network (nil without a
// network manager).
func (m *Manager) joinNetwork(rec *record) (*bnet.Sandbox, error) {
	if m.cfg.Networks == nil {
		return nil, nil
	}
	hc := rec.HostConfig
	mode := hc.NetworkMode
	if mode.IsContainer() {
		other, err := m.Get(mode.ConnectedContainer())
		if err != nil {
			return nil, errdefs.Conflict("cannot join network namespace of container %s: %v", mode.ConnectedContainer(), err)
		}
		mode = ctr.NetworkMode("container:" + other.ID())
	}
	eps := endpoints(rec.NetworkingConfig)
	if rec.Config.NetworkDisabled {
		// A namespace with its loopback only, shown with no networks.
		mode, eps = network.NetworkNone, nil
	}
	req := bnet.JoinRequest{
		ID: rec.ID, Name: rec.Name, Hostname: rec.Config.Hostname, Mode: mode,
		Endpoints:    eps,
		PortBindings: hc.PortBindings, PublishAll: hc.PublishAllPorts, Exposed: exposedPorts(rec),
		DNS: addrStrings(hc.DNS), DNSSearch: hc.DNSSearch, DNSOptions: hc.DNSOptions,
	}
	return m.cfg.Networks.Join(req)
}

// exposedPorts are the image's and the request's exposed ports plus the
// published ones.
func exposedPorts(rec *record) network.PortSet {
	out := maps.Clone(rec.Config.ExposedPorts)
	if out == nil {
		out = network.PortSet{}
	}
	for p := range rec.HostConfig.PortBindings {
		out[p] = struct{}{}
	}
	return out
}

// networkSettings reports a container's networks as inspect does: live
// endpoints while it runs, the configured networks otherwise.
func networkSettings(rec *record, sb *bnet.Sandbox) *ctr.NetworkSettings {
	ns := &ctr.NetworkSettings{Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	if rec.Config.NetworkDisabled {
		if sb != nil {
			ns.SandboxID, ns.SandboxKey = rec.ID, sb.Path
		}
		return ns
	}
	if sb != nil {
		ns.SandboxID = rec.ID
		ns.SandboxKey = sb.Path
		maps.Copy(ns.Ports, sb.Ports)
		for name, es := range sb.Endpoints() {
			ns.Networks[name] = es.Copy()
		}
	}
	mode := rec.HostConfig.NetworkMode
	if len(ns.Networks) == 0 && !mode.IsContainer() {
		for name, es := range endpoints(rec.NetworkingConfig) {
			ns.Networks[name] = es.Copy()
		}
		if len(ns.Networks) == 0 {
			ns.Networks[string(mode)] = &network.EndpointSettings{}
		}
	}
	return ns
}

// portSummaries are docker ps's Ports: published bindings, then exposed
// ports that are not published.
func portSummaries(rec *record, sb *bnet.Sandbox) []ctr.PortSummary {
	out := []ctr.PortSummary{}
	if sb == nil {
		return ports(rec.Config.ExposedPorts)
	}
	for p, bs := range sb.Ports {
		if len(bs) == 0 {
			out = append(out, ctr.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
		for _, b := range bs {
			hp, _ := parsePort(b.HostPort)
			out = append(out, ctr.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: hp, Type: string(p.Proto())})
		}
	}
	slices.SortFunc(out, func(a, b ctr.PortSummary) int {
		if a.PrivatePort != b.PrivatePort {
			return int(a.PrivatePort) - int(b.PrivatePort)
		}
		return strings.Compare(a.Type, b.Type)
	})
	return out
}

func parsePort(s string) (uint16, bool) {
	var n uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint32(c-'0')
		if n > 65535 {
			return 0, false
		}
	}
	return uint16(n), s != ""
}

// publishes reports whether sb publishes a container port matching the ps
// filter value ("80", "80/tcp", "8000-8080/udp"), as dockerd's filter.
func publishes(sb *bnet.Sandbox, want string) bool {
	if sb == nil {
		return false
	}
	pr, err := network.ParsePortRange(want)
	if err != nil {
		return false
	}
	for p, bs := range sb.Ports {
		if len(bs) > 0 && p.Num() >= pr.Start() && p.Num() <= pr.End() && p.Proto() == pr.Proto() {
			return true
		}
	}
	return false
}

// NetworksInUse returns the names of the networks containers (running or
// not) are configured to join, so unused ones can be pruned.
func (m *Manager) NetworksInUse() map[string]bool {
	out := map[string]bool{}
	for _, c := range m.All() {
		rec := c.snapshot()
		out[string(rec.HostConfig.NetworkMode)] = true
		for name := range endpoints(rec.NetworkingConfig) {
			out[name] = true
		}
	}
	return out
}

// ConnectNetwork adds a network to a container: at once if it runs, and
// to its configuration for the next starts.
func (m *Manager) ConnectNetwork(ctx context.Context, ref, netRef string, cfg *network.EndpointSettings) error {
	if m.cfg.Networks == nil {
		return errdefs.NotImplemented("this engine has no networks")
	}
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	_, name, err := m.cfg.Networks.Lookup(netRef)
	if err != nil {
		return err
	}
	if cfg == nil {
		cfg = &network.EndpointSettings{}
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	rec, sb := c.snapshotRun()
	switch mode := rec.HostConfig.NetworkMode; {
	case mode.IsHost(), name == network.NetworkHost:
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	case mode.IsNone(), name == network.NetworkNone:
		return errdefs.Forbidden("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	case mode.IsContainer():
		return errdefs.Forbidden("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	if _, ok := endpoints(rec.NetworkingConfig)[name]; ok {
		return errdefs.Forbidden("endpoint with name %s already exists in network %s", rec.Name, name)
	}
	if sb != nil {
		rc, err := m.cfg.Networks.Connect(rec.ID, rec.Name, name, cfg)
		if err != nil {
			return err
		}
		// Rewritten in place: the container's /etc/resolv.conf is a bind
		// mount of this file (etcFiles).
		if rc != nil {
			if err := os.WriteFile(filepath.Join(c.dir, "resolv.conf"), rc, 0o644); err != nil {
				m.cfg.Networks.Disconnect(rec.ID, name)
				return fmt.Errorf("connect to %s: write /etc/resolv.conf: %w", name, err)
			}
		}
	}
	return m.updateEndpoints(c, func(eps map[string]*network.EndpointSettings) { eps[name] = cfg.Copy() })
}

// DisconnectNetwork removes a network from a container.
func (m *Manager) DisconnectNetwork(ctx context.Context, ref, netRef string, force bool) error {
	if m.cfg.Networks == nil {
		return errdefs.NotImplemented("this engine has no networks")
	}
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	_, name, err := m.cfg.Networks.Lookup(netRef)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	rec, sb := c.snapshotRun()
	if rec.HostConfig.NetworkMode.IsHost() || name == network.NetworkHost {
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	if _, ok := endpoints(rec.NetworkingConfig)[name]; !ok {
		return errdefs.As(errdefs.KindUnknown, fmt.Errorf("container %s is not connected to network %s", rec.ID, name))
	}
	if sb != nil {
		if err := m.cfg.Networks.Disconnect(rec.ID, name); err != nil {
			return err
		}
	}
	return m.updateEndpoints(c, func(eps map[string]*network.EndpointSettings) { delete(eps, name) })
}

func (m *Manager) updateEndpoints(c *Container, change func(map[string]*network.EndpointSettings)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.NetworkingConfig
	eps := map[string]*network.EndpointSettings{}
	for k, v := range endpoints(old) {
		eps[k] = v.Copy()
	}
	change(eps)
	c.rec.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: eps}
	if err := c.saveLocked(); err != nil {
		c.rec.NetworkingConfig = old
		return err
	}
	return nil
}
