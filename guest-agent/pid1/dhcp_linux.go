package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// dhcpNet configures nic from a DHCP lease (berth.ip=dhcp: Apple
// Virtualization's NAT network) and keeps the lease renewed until ctx
// ends. resolvConf receives the lease's resolvers.
type dhcpNet struct {
	nic        netlink.Link
	resolvConf string
	log        *slog.Logger
}

// up brings the link up and takes a lease, retrying until ctx ends.
func (n *dhcpNet) up(ctx context.Context) (*nclient4.Client, *nclient4.Lease, error) {
	if err := netlink.LinkSetUp(n.nic); err != nil {
		return nil, nil, fmt.Errorf("dhcp: %s up: %w", n.nic.Attrs().Name, err)
	}
	c, err := nclient4.New(n.nic.Attrs().Name, nclient4.WithTimeout(time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, nil, fmt.Errorf("dhcp on %s: %w", n.nic.Attrs().Name, err)
	}
	for {
		lease, err := c.Request(ctx, dhcpMods()...)
		if err == nil {
			if err := n.apply(nil, lease.ACK); err != nil {
				c.Close()
				return nil, nil, err
			}
			return c, lease, nil
		}
		if ctx.Err() != nil {
			c.Close()
			return nil, nil, fmt.Errorf("dhcp on %s: no lease: %w", n.nic.Attrs().Name, err)
		}
		n.log.Warn("dhcp: no lease yet", "err", err)
	}
}

func dhcpMods() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptHostName(hostname)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer)}
}

// keep renews the lease at its renewal time (T1) for as long as ctx lasts.
// A failed renewal is retried a minute later while the address stays; a
// refused one (NAK) starts over with a new lease.
func (n *dhcpNet) keep(ctx context.Context, c *nclient4.Client, lease *nclient4.Lease) {
	defer c.Close()
	for {
		lt := lease.ACK.IPAddressLeaseTime(time.Hour)
		select {
		case <-ctx.Done():
			return
		case <-time.After(lease.ACK.IPAddressRenewalTime(lt / 2)):
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			nl, err := c.Renew(rctx, lease)
			var nak *nclient4.ErrNak
			if errors.As(err, &nak) {
				nl, err = c.Request(rctx, dhcpMods()...)
			}
			cancel()
			if err == nil {
				if err := n.apply(lease.ACK, nl.ACK); err != nil {
					n.log.Warn("dhcp: renewed lease", "err", err)
				}
				lease = nl
				break
			}
			n.log.Warn("dhcp: renew", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

// apply sets the address, default route and resolvers of ack (replacing
// those of old, if the address changed).
func (n *dhcpNet) apply(old, ack *dhcpv4.DHCPv4) error {
	ip, mask := ack.YourIPAddr.To4(), ack.SubnetMask()
	if ip == nil || ip.IsUnspecified() {
		return errors.New("dhcp: the lease has no address")
	}
	if mask == nil {
		mask = net.IP(ip).DefaultMask()
	}
	if old != nil && !old.YourIPAddr.Equal(ack.YourIPAddr) {
		oldAddr := &netlink.Addr{IPNet: &net.IPNet{IP: old.YourIPAddr, Mask: old.SubnetMask()}}
		netlink.AddrDel(n.nic, oldAddr)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: mask}}
	if err := netlink.AddrReplace(n.nic, addr); err != nil {
		return fmt.Errorf("dhcp: address %s on %s: %w", addr.IPNet, n.nic.Attrs().Name, err)
	}
	if gw := ack.Router(); len(gw) > 0 {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: n.nic.Attrs().Index, Gw: gw[0]}); err != nil {
			return fmt.Errorf("dhcp: default route via %s: %w", gw[0], err)
		}
	}
	if dns := ack.DNS(); len(dns) > 0 {
		var b strings.Builder
		for _, d := range dns {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := fsutil.WriteFileAtomic(n.resolvConf, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
	}
	n.log.Info("dhcp lease", "addr", addr.IPNet, "gateway", ack.Router(), "dns", ack.DNS(),
		"lease", ack.IPAddressLeaseTime(0))
	return nil
}
