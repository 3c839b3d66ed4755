package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vishvananda/netlink"
)

// setupNetwork brings up loopback and the first ethernet NIC with the
// static address of the driver's user-mode network (no DHCP: it costs
// round trips at boot and slirp's answers are fixed anyway), or with DHCP
// where the network hands out addresses (berth.ip=dhcp: vz's NAT).
func setupNetwork(cfg Config) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("network: lo up: %w", err)
	}
	nic, err := findNIC(2 * time.Second)
	if err != nil {
		return err
	}
	if cfg.DHCP {
		n := &dhcpNet{nic: nic, resolvConf: "/etc/resolv.conf", log: slog.Default()}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, lease, err := n.up(ctx)
		cancel()
		if err != nil {
			return err
		}
		go n.keep(context.Background(), c, lease)
		return nil
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: cfg.Addr.Addr().AsSlice(), Mask: net.CIDRMask(cfg.Addr.Bits(), cfg.Addr.Addr().BitLen())}}
	if err := netlink.AddrReplace(nic, addr); err != nil {
		return fmt.Errorf("network: address %s on %s: %w", cfg.Addr, nic.Attrs().Name, err)
	}
	if err := netlink.LinkSetUp(nic); err != nil {
		return fmt.Errorf("network: %s up: %w", nic.Attrs().Name, err)
	}
	route := &netlink.Route{LinkIndex: nic.Attrs().Index, Gw: cfg.Gateway.AsSlice()}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("network: default route via %s: %w", cfg.Gateway, err)
	}
	return nil
}

// findNIC waits briefly for the virtio NIC to appear (its driver probes
// asynchronously after the module loads).
func findNIC(wait time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		for _, l := range links {
			if l.Type() == "device" && l.Attrs().Name != "lo" && len(l.Attrs().HardwareAddr) == 6 {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("network: no ethernet interface")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
