// Package pid1 is berth-agent's "init" role: PID 1 of the VM. It prepares
// the machine (mounts, kernel modules, network, data disk, clock), starts
// the engine as a child process and restarts it if it dies, reaps every
// other process, serves the host's channel and control API, and powers the
// machine off cleanly on request. The engine does not run in this process:
// a PID 1 that reaps with wait4(-1) would steal the exit statuses the
// engine waits for.
package pid1

import (
	"fmt"
	"net/netip"
	"strings"
)

// Config is read from the kernel command line (berth.* parameters), so the
// host driver can set it per boot.
type Config struct {
	// Network for a slirp-style NIC: the address, gateway and resolver,
	// set directly (no DHCP).
	Addr    netip.Prefix // berth.ip=10.0.2.15/24
	Gateway netip.Addr   // berth.gw=10.0.2.2
	DNS     []netip.Addr // berth.dns=10.0.2.3[,…]
	// DHCP: the address, gateway and resolvers come from a DHCP server
	// instead (berth.ip=dhcp): Apple Virtualization's NAT hands them out.
	DHCP bool
	// DataDisk is the block device holding /data (berth.disk=/dev/vda).
	DataDisk string
	// System is the read-only system disk (berth.sys=/dev/vdb): Berth's
	// binaries, most modules, the tools, the preloaded images.
	System string
	// EngineArgs are extra berth-agent flags, comma-separated
	// (berth.engine=--insecure-registry=10.0.2.2:5000,--log-level=debug).
	EngineArgs []string
	// Port is the name of the virtio-serial port to the host (berth.port).
	Port string
	// PrivateVsock: the vsock device reaches only the process that runs
	// the machine (berth.vsock=private, Apple Virtualization), so vsock
	// connections need no channel key (transport.GuestMux).
	PrivateVsock bool
	LogLevel     string // berth.log=debug
	// Shares are host folders to mount with virtiofs
	// (berth.share=TAG:/guest/path[:ro], repeatable).
	Shares []Share
	// Rosetta is the virtiofs tag of Apple's Rosetta share, registered
	// with binfmt_misc for x86-64 binaries (berth.rosetta=TAG).
	Rosetta string
	// Probe makes PID 1 print ProbeMarker and power off at once: the host
	// boots the guest this way to learn whether an accelerator runs it.
	Probe bool // berth.probe=1
}

// Share is a virtiofs folder from the host.
type Share struct {
	Tag      string
	Path     string
	ReadOnly bool
}

// ProbeMarker is printed on the console by a probe boot.
const ProbeMarker = "BERTH-PROBE-OK"

// DefaultConfig matches QEMU's user-mode network and the qemu driver.
func DefaultConfig() Config {
	return Config{
		Addr:     netip.MustParsePrefix("10.0.2.15/24"),
		Gateway:  netip.MustParseAddr("10.0.2.2"),
		DNS:      []netip.Addr{netip.MustParseAddr("10.0.2.3")},
		DataDisk: "/dev/vda",
		System:   "/dev/vdb",
		Port:     "berth.agent",
		LogLevel: "info",
	}
}

// ParseCmdline reads berth.* parameters from a kernel command line over the
// defaults; other parameters are the kernel's.
func ParseCmdline(cmdline string) (Config, error) {
	c := DefaultConfig()
	for _, f := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "berth.") {
			continue
		}
		var err error
		switch k {
		case "berth.ip":
			if v == "dhcp" {
				c.DHCP = true
				break
			}
			c.Addr, err = netip.ParsePrefix(v)
		case "berth.gw":
			c.Gateway, err = netip.ParseAddr(v)
		case "berth.dns":
			c.DNS = nil
			for _, s := range strings.Split(v, ",") {
				a, perr := netip.ParseAddr(s)
				if perr != nil {
					err = perr
					break
				}
				c.DNS = append(c.DNS, a)
			}
		case "berth.disk":
			if !strings.HasPrefix(v, "/dev/") {
				err = fmt.Errorf("want a /dev path")
			}
			c.DataDisk = v
		case "berth.sys":
			if !strings.HasPrefix(v, "/dev/") {
				err = fmt.Errorf("want a /dev path")
			}
			c.System = v
		case "berth.engine":
			c.EngineArgs = strings.Split(v, ",")
		case "berth.port":
			c.Port = v
		case "berth.vsock":
			if v != "private" {
				err = fmt.Errorf("want private")
			}
			c.PrivateVsock = true
		case "berth.log":
			c.LogLevel = v
		case "berth.share":
			f := strings.Split(v, ":")
			if len(f) < 2 || len(f) > 3 || f[0] == "" || !strings.HasPrefix(f[1], "/") || (len(f) == 3 && f[2] != "ro") {
				err = fmt.Errorf("want TAG:/path[:ro]")
				break
			}
			c.Shares = append(c.Shares, Share{Tag: f[0], Path: f[1], ReadOnly: len(f) == 3})
		case "berth.rosetta":
			if !shareTagOK(v) {
				err = fmt.Errorf("want a virtiofs tag")
			}
			c.Rosetta = v
		case "berth.probe":
			c.Probe = v == "1"
		default:
			err = fmt.Errorf("unknown parameter")
		}
		if err != nil {
			return c, fmt.Errorf("kernel command line %s: %w", f, err)
		}
	}
	return c, nil
}

func shareTagOK(t string) bool {
	if t == "" || len(t) > 36 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
