package pid1

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	c, err := ParseCmdline("console=ttyS0 quiet berth.ip=192.168.5.15/24 berth.gw=192.168.5.2 berth.dns=1.1.1.1,9.9.9.9 " +
		"berth.disk=/dev/nvme0n1 berth.sys=/dev/nvme0n2 berth.engine=--insecure-registry=10.0.2.2:5000,--log-level=debug berth.probe=1 root=/dev/sda berth.share=home:/home/u berth.share=src:/src:ro")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Addr = netip.MustParsePrefix("192.168.5.15/24")
	want.Gateway = netip.MustParseAddr("192.168.5.2")
	want.DNS = []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}
	want.DataDisk, want.System = "/dev/nvme0n1", "/dev/nvme0n2"
	want.EngineArgs = []string{"--insecure-registry=10.0.2.2:5000", "--log-level=debug"}
	want.Probe = true
	want.Shares = []Share{{Tag: "home", Path: "/home/u"}, {Tag: "src", Path: "/src", ReadOnly: true}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	c, err = ParseCmdline("console=hvc0 berth.ip=dhcp berth.rosetta=rosetta berth.vsock=private")
	if err != nil || !c.DHCP || c.Rosetta != "rosetta" || !c.PrivateVsock {
		t.Fatalf("dhcp and rosetta: %+v %v", c, err)
	}
	if c, _ := ParseCmdline("console=ttyS0"); !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []string{"berth.ip=10.0.2.15", "berth.gw=nope", "berth.disk=vda", "berth.sys=vdb", "berth.dns=1.1.1.1,x", "berth.unknown=1",
		"berth.share=home", "berth.share=:/x", "berth.share=t:rel", "berth.share=t:/x:rw", "berth.rosetta=", "berth.rosetta=a/b", "berth.vsock=open"} {
		if _, err := ParseCmdline(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
