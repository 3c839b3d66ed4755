//go:build linux

package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nat keeps the engine's nftables table (family ip) in step with its
// bridges and published ports. The whole table is rebuilt in one atomic
// batch on every change, so its content is always a function of the
// engine's state and nothing can be left behind; it is deleted when the
// last bridge goes. Other tables (the host's firewall, dockerd's, …) are
// never touched.
type nat struct {
	table string
	mu    sync.Mutex // one batch at a time
}

func newNAT(table string) *nat { return &nat{table: table} }

// natBridge is one bridge network as NAT sees it.
type natBridge struct {
	name     string
	subnet   netip.Prefix
	internal bool
}

// natPort is one published port: traffic to a local address (or hostIP)
// on hostPort is sent to the container's address.
type natPort struct {
	proto    string // tcp or udp
	hostIP   netip.Addr
	hostPort uint16
	addr     netip.Addr
	port     uint16
}

type natState struct {
	prefix  string // common prefix of the engine's bridge names
	bridges []natBridge
	ports   []natPort
}

// applyNATLocked rebuilds the table from the manager's state. Call with
// m.mu held.
func (m *Manager) applyNATLocked() error {
	st := &natState{prefix: "br-" + m.tag + "-"}
	for _, n := range m.sortedLocked() {
		if n.up {
			st.bridges = append(st.bridges, natBridge{name: n.bridge, subnet: n.rec.Subnet, internal: n.rec.Internal})
		}
	}
	for _, b := range m.ports {
		st.ports = append(st.ports, b.nat)
	}
	slices.SortFunc(st.ports, func(a, b natPort) int { return int(a.hostPort) - int(b.hostPort) })
	if len(st.bridges) == 0 {
		st = nil
	}
	return m.nat.apply(st)
}

// apply replaces the table with one for st; nil deletes it.
func (t *nat) apply(st *natState) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: t.table}
	c.AddTable(tbl)
	c.DelTable(tbl)
	if st != nil {
		t.build(c, st)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", t.table, err)
	}
	return nil
}

func (t *nat) build(c *nftables.Conn, st *natState) {
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: t.table})
	accept := nftables.ChainPolicyAccept
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: tbl, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	ports := c.AddChain(&nftables.Chain{Name: "ports", Table: tbl})
	pre := chain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := chain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	input := chain("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	fwd := chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var exprs []expr.Any
		for _, p := range parts {
			exprs = append(exprs, p...)
		}
		c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: exprs})
	}
	jump := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: ports.Name}}
	masq := []expr.Any{&expr.Masq{}}
	loopback := netip.MustParsePrefix("127.0.0.0/8")

	// Traffic to a local address goes through the published ports.
	rule(pre, fibLocalDaddr(), jump)
	rule(out, fibLocalDaddr(), jump)
	for _, p := range st.ports {
		var match []expr.Any
		if p.hostIP.IsValid() && !p.hostIP.IsUnspecified() {
			match = ipField(16, p.hostIP.AsSlice())
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		rule(ports, match, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.hostPort)},
			&expr.Immediate{Register: 1, Data: p.addr.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		})
	}

	for _, b := range st.bridges {
		iif, notIif := metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, ifname(b.name)), metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpNeq, ifname(b.name))
		oif, notOif := metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, ifname(b.name)), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, ifname(b.name))
		if b.internal {
			// Internal networks reach nothing but their own bridge.
			rule(fwd, iif, notOif, drop())
			rule(fwd, oif, notIif, drop())
		} else {
			// Outbound NAT: the subnet leaving by any other interface.
			rule(post, ipPrefix(12, b.subnet), notOif, masq)
		}
		// Connections from the host's loopback DNATed to a container, and
		// a container reaching its own network through a published port
		// (hairpin), leave the bridge from the gateway's address.
		rule(post, oif, ipPrefix(12, loopback), masq)
		rule(post, oif, ipPrefix(12, b.subnet), ctStatusDNAT(), masq)
		// route_localnet is on for the bridge: a container must still not
		// open anything on the host's loopback through it.
		rule(input, iif, ipPrefix(16, loopback), ctNotEstablished(), drop())
		// Networks are isolated from each other, as dockerd's are.
		rule(fwd, iif, notOif, metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, []byte(st.prefix)), drop())
	}
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// metaCmp compares a meta key (interface names, protocol) with data.
func metaCmp(key expr.MetaKey, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data}}
}

// ifname is an interface name as nftables compares it: NUL-padded to IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// ipField matches the IPv4 header field at offset (12 source, 16 destination).
func ipField(offset uint32, ip []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip},
	}
}

// ipPrefix matches the IPv4 header field at offset against a prefix.
func ipPrefix(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// fibLocalDaddr matches packets addressed to this host (fib daddr type local).
func fibLocalDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ctStatusDNAT matches connections whose destination was translated.
func ctStatusDNAT() []expr.Any {
	const ipsDstNAT = 1 << 5
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// ctNotEstablished matches packets of connections neither established nor
// related (new, invalid or untracked).
func ctNotEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)},
	}
}
