package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-dev/berth/internal/testkit"
)

// TestDHCP takes a lease from a real DHCP server (busybox udhcpd) across a
// veth pair between two network namespaces made for the test, as PID 1
// does on Apple Virtualization's NAT: address, default route, resolvers.
func TestDHCP(t *testing.T) {
	testkit.RequireRoot(t)
	for _, bin := range []string{"busybox", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (Debian: busybox-static, iproute2)", bin)
		}
	}
	sfx := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	server, client := "bdhs"+sfx, "bdhc"+sfx // namespaces and veth ends
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", server)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", server).Run() })
	ip("netns", "add", client)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", client).Run() })
	ip("link", "add", server, "netns", server, "type", "veth", "peer", "name", client, "netns", client)
	ip("-n", server, "addr", "add", "192.168.77.1/24", "dev", server)
	ip("-n", server, "link", "set", server, "up")

	dir := t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	os.WriteFile(conf, []byte(strings.Join([]string{
		"start 192.168.77.50", "end 192.168.77.60", "interface " + server,
		"lease_file " + filepath.Join(dir, "leases"), "pidfile " + filepath.Join(dir, "pid"),
		"option subnet 255.255.255.0", "option router 192.168.77.1", "option dns 192.168.77.53 192.168.77.54",
		"option lease 3600", ""}, "\n")), 0o644)
	os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644)
	srv := exec.Command("ip", "netns", "exec", server, "busybox", "udhcpd", "-f", conf)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("udhcpd: %s", srvOut.String())
		}
	})

	// The client runs on a thread moved into its namespace; netlink and
	// the DHCP socket act in the namespace of the thread that opens them.
	resolv := filepath.Join(dir, "resolv.conf")
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		h, err := netns.GetFromName(client)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread() // else the thread dies with the goroutine
			}
		}()
		errc <- func() error {
			nic, err := netlink.LinkByName(client)
			if err != nil {
				return err
			}
			n := &dhcpNet{nic: nic, resolvConf: resolv, log: slog.Default()}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, lease, err := n.up(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			// A renewal goes to the same server and keeps the address.
			nl, err := c.Renew(ctx, lease)
			if err != nil {
				return fmt.Errorf("renew: %w", err)
			}
			if err := n.apply(lease.ACK, nl.ACK); err != nil {
				return err
			}
			addrs, err := netlink.AddrList(nic, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			if len(addrs) != 1 || !strings.HasPrefix(addrs[0].IPNet.String(), "192.168.77.") || !strings.HasSuffix(addrs[0].IPNet.String(), "/24") {
				return fmt.Errorf("addresses %v, want one 192.168.77.x/24", addrs)
			}
			routes, err := netlink.RouteList(nic, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "192.168.77.1" {
					return nil
				}
			}
			return fmt.Errorf("no default route via 192.168.77.1 in %v", routes)
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(resolv)
	if err != nil || string(b) != "nameserver 192.168.77.53\nnameserver 192.168.77.54\n" {
		t.Fatalf("resolv.conf %q, %v", b, err)
	}
}
