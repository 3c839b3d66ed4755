//go:build linux

package network

import (
	"bufio"
	"io"
	gonet "net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates bridges, namespaces and nftables rules")
	}
}

func newManager(t testing.TB) *Manager {
	t.Helper()
	requireRoot(t)
	m, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if _, err := netlink.LinkByName("br-" + m.tag + "-0"); err == nil {
			t.Error("bridge left after Close")
		}
		if tableExists(t, "berth-"+m.tag) {
			t.Error("nftables table left after Close")
		}
	})
	return m
}

func tableExists(t testing.TB, name string) bool {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

// hostAddress is a non-loopback IPv4 address of the host, if it has one.
func hostAddress(t *testing.T) string {
	addrs, _ := gonet.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*gonet.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "172.") {
			return ipn.IP.String()
		}
	}
	return ""
}

func containerID(n int) string { return strings.Repeat(strconv.Itoa(n%10), 64) }

// serveIn answers every TCP connection to port in the sandbox with msg.
func serveIn(t *testing.T, sb *Sandbox, addr, msg string) {
	t.Helper()
	var ln gonet.Listener
	if err := inNetns(sb.Path, func() (err error) { ln, err = gonet.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, msg)
			c.Close()
		}
	}()
}

func read(t *testing.T, addr string) string {
	t.Helper()
	c, err := gonet.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %s: %v", addr, err)
	}
	return string(b)
}

func TestBridgePublishedPortAndTeardown(t *testing.T) {
	m := newManager(t)
	id := containerID(1)
	sb, err := m.Join(JoinRequest{ID: id, Name: "web", Hostname: "web", Mode: "bridge",
		PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{}}}})
	if err != nil {
		t.Fatal(err)
	}
	es := sb.Endpoints()["bridge"]
	if es == nil || !es.IPAddress.IsValid() || es.Gateway != m.HostGateway() {
		t.Fatalf("endpoint: %+v", es)
	}
	serveIn(t, sb, "0.0.0.0:80", "hello")
	bs := sb.Ports[network.MustParsePort("80/tcp")]
	if len(bs) != 1 || bs[0].HostIP != netip.IPv4Unspecified() {
		t.Fatalf("ports: %+v", sb.Ports)
	}
	if got := read(t, gonet.JoinHostPort(es.IPAddress.String(), "80")); got != "hello" {
		t.Fatalf("container address: %q", got)
	}
	if got := read(t, "127.0.0.1:"+bs[0].HostPort); got != "hello" {
		t.Fatalf("published port on loopback: %q", got)
	}
	if hostIP := hostAddress(t); hostIP != "" {
		if got := read(t, gonet.JoinHostPort(hostIP, bs[0].HostPort)); got != "hello" {
			t.Fatalf("published port on %s: %q", hostIP, got)
		}
	}
	for k, b := range m.ports {
		if n := b.relayed.Load(); n != 0 {
			t.Fatalf("%v: %d connections went through the socket, not the DNAT rule", k, n)
		}
	}
	// A second container cannot take the same host port.
	_, err = m.Join(JoinRequest{ID: containerID(2), Name: "other", Mode: "bridge",
		PortBindings: network.PortMap{network.MustParsePort("81/tcp"): {{HostPort: bs[0].HostPort}}}})
	if err == nil || !strings.Contains(err.Error(), "Bind for 0.0.0.0:"+bs[0].HostPort+" failed: port is already allocated") {
		t.Fatalf("port conflict: %v", err)
	}
	if v, ns, p := m.Counts(); v != 1 || ns != 1 || p != 1 {
		t.Fatalf("counts after a failed join: veths %d netns %d ports %d", v, ns, p)
	}
	veth := sb.eps[m.byNameLocked("bridge").rec.ID].veth
	m.Leave(id)
	m.bg.Wait() // veths go in the background
	if _, err := netlink.LinkByName(veth); err == nil {
		t.Fatal("veth left after Leave")
	}
	if _, err := os.Stat(sb.Path); !os.IsNotExist(err) {
		t.Fatalf("netns mount left: %v", err)
	}
	if v, ns, p := m.Counts(); v+ns+p != 0 {
		t.Fatalf("counts after Leave: %d %d %d", v, ns, p)
	}
	// The port is free again.
	ln, err := gonet.Listen("tcp4", "0.0.0.0:"+bs[0].HostPort)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
}

func TestUserNetworkDNSAndIsolation(t *testing.T) {
	m := newManager(t)
	resp, err := m.Create(network.CreateRequest{Name: "appnet"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(network.CreateRequest{Name: "appnet"}); err == nil {
		t.Fatal("duplicate network name accepted")
	}
	a, err := m.Join(JoinRequest{ID: containerID(3), Name: "db", Hostname: "db", Mode: "appnet",
		Endpoints: map[string]*network.EndpointSettings{"appnet": {Aliases: []string{"database"}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Join(JoinRequest{ID: containerID(4), Name: "app", Hostname: "app", Mode: ctr.NetworkMode(resp.ID[:12])})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b.ResolvConf), "nameserver 127.0.0.11\n") {
		t.Fatalf("resolv.conf: %q", b.ResolvConf)
	}
	dbIP := a.Endpoints()["appnet"].IPAddress
	for _, name := range []string{"db.", "DATABASE.", containerID(3)[:12] + "."} {
		var r *dns.Msg
		err := inNetns(b.Path, func() (err error) {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			r, err = dns.Exchange(q, "127.0.0.11:53")
			return err
		})
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != dbIP.String() {
			t.Fatalf("%s: %v, want %s", name, r.Answer, dbIP)
		}
	}
	// Reach db from app by address (the same bridge).
	serveIn(t, a, "0.0.0.0:5432", "pg")
	var got string
	inNetns(b.Path, func() error {
		c, err := gonet.DialTimeout("tcp4", gonet.JoinHostPort(dbIP.String(), "5432"), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got, _ = bufio.NewReader(c).ReadString('\n')
		return nil
	})
	if got != "pg" {
		t.Fatalf("app → db: %q", got)
	}
	if err := m.Remove("appnet"); err == nil || !strings.Contains(err.Error(), "has active endpoints") {
		t.Fatalf("remove in use: %v", err)
	}
	m.Leave(containerID(3))
	m.Leave(containerID(4))
	if err := m.Remove("appnet"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName("br-" + m.tag + "-" + resp.ID[:5]); err == nil {
		t.Fatal("user bridge left after remove")
	}
}

func TestAllocateSkipsReservedAndWraps(t *testing.T) {
	n := &net{rec: record{Name: "t", Subnet: netip.MustParsePrefix("10.9.0.0/29"), Gateway: netip.MustParseAddr("10.9.0.1")},
		used: map[netip.Addr]string{}}
	var got []string
	for i := 0; i < 5; i++ {
		a, err := n.allocate(netip.Addr{}, containerID(i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if strings.Join(got, " ") != "10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6" {
		t.Fatalf("allocated %v", got)
	}
	if _, err := n.allocate(netip.Addr{}, "x"); err == nil {
		t.Fatal("allocated past the end of a full subnet")
	}
	delete(n.used, netip.MustParseAddr("10.9.0.3"))
	if a, _ := n.allocate(netip.Addr{}, "y"); a.String() != "10.9.0.3" {
		t.Fatalf("reuse: %s", a)
	}
	if _, err := n.allocate(netip.MustParseAddr("10.9.0.1"), "z"); err == nil {
		t.Fatal("handed out the gateway")
	}
}

// waitSpare waits for the spare network made after a default-bridge join.
func waitSpare(t *testing.T, m *Manager) *spare {
	t.Helper()
	for i := 0; i < 200; i++ {
		m.mu.Lock()
		sp := m.spare
		m.mu.Unlock()
		if sp != nil {
			return sp
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no spare network made")
	return nil
}

func TestSpareServesTheNextBridgeJoin(t *testing.T) {
	var next *spare
	t.Cleanup(func() { // after newManager's Close: cleanups run last first
		if next == nil {
			return
		}
		if _, err := os.Stat(next.path); !os.IsNotExist(err) {
			t.Errorf("spare netns left after Close: %v", err)
		}
		if _, err := netlink.LinkByName(next.ep.veth); err == nil {
			t.Errorf("spare veth %s left after Close", next.ep.veth)
		}
	})
	m := newManager(t)
	if _, err := m.Join(JoinRequest{ID: containerID(1), Name: "first", Hostname: "first", Mode: "default"}); err != nil {
		t.Fatal(err)
	}
	sp := waitSpare(t, m)
	// Not served from the spare: another network, or none.
	if _, err := m.Create(network.CreateRequest{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	for i, mode := range []ctr.NetworkMode{"other", "none"} {
		sb, err := m.Join(JoinRequest{ID: containerID(2 + i), Name: "x", Hostname: "x", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if sb.Path == sp.path {
			t.Fatalf("--network %s got the default bridge's spare", mode)
		}
	}
	sb, err := m.Join(JoinRequest{ID: containerID(5), Name: "web", Hostname: "web", Mode: "bridge",
		PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	es := sb.Endpoints()["bridge"]
	if sb.Path != sp.path || es.IPAddress != sp.ep.ip || es.EndpointID != sp.ep.id {
		t.Fatalf("the join did not take the spare: path %s endpoint %+v, spare %s %s", sb.Path, es, sp.path, sp.ep.ip)
	}
	if !slices.Contains(sb.HostsEntries, es.IPAddress.String()+"\tweb") {
		t.Fatalf("hosts entries: %q", sb.HostsEntries)
	}
	// Plugged in all the way: reached at its address and through its
	// published port, and it has its default route.
	serveIn(t, sb, "0.0.0.0:80", "spare")
	if got := read(t, gonet.JoinHostPort(es.IPAddress.String(), "80")); got != "spare" {
		t.Fatalf("at the container's address: %q", got)
	}
	if got := read(t, gonet.JoinHostPort("127.0.0.1", sb.Ports[network.MustParsePort("80/tcp")][0].HostPort)); got != "spare" {
		t.Fatalf("through the published port: %q", got)
	}
	h, err := nsHandle(sb.Path)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	h.Close()
	if err != nil || !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(es.Gateway.AsSlice())
	}) {
		t.Fatalf("no default route via %s: %v %v", es.Gateway, routes, err)
	}
	// The next spare is made meanwhile; Close undoes it.
	next = waitSpare(t, m)
	if next == sp || next.ep.ip == sp.ep.ip {
		t.Fatalf("next spare reuses %s", sp.ep.ip)
	}
	m.Leave(containerID(5))
}
