//go:build linux

package pid1

import (
	"os"
	"path/filepath"
	"testing"
)

func TestModuleDB(t *testing.T) {
	dir, conf := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/llc/llc.ko kernel/net/802/stp.ko\n"+
			"kernel/net/bridge/bridge.ko: kernel/net/llc/llc.ko kernel/net/802/stp.ko\n"+
			"kernel/net/802/stp.ko: kernel/net/llc/llc.ko\n"+
			"kernel/net/llc/llc.ko: \n"+
			"kernel/fs/overlayfs/overlay.ko: \n"), 0o644)
	os.WriteFile(filepath.Join(conf, "berth.conf"), []byte("alias fs-overlay overlay\nalias rtnl-link-bridge bridge\nalias pci:v00001AF4d*sv*sd*bc*sc*i* llc\n"), 0o644)
	db, err := readModuleDB(dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"overlay": "overlay", "fs-overlay": "overlay", "br-netfilter": "br_netfilter",
		"rtnl-link-bridge": "bridge", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00": "llc"} {
		if got, ok := db.resolve(in); !ok || got != want {
			t.Errorf("resolve(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	if _, ok := db.resolve("fs-nfs"); ok {
		t.Error("an unknown alias resolved")
	}
	// Dependencies come first, each once.
	var order []string
	err = db.load("br_netfilter", map[string]bool{}, func(p string) error {
		order = append(order, filepath.Base(p))
		return nil
	})
	if err != nil || len(order) != 4 || order[0] != "llc.ko" || order[1] != "stp.ko" || order[2] != "bridge.ko" || order[3] != "br_netfilter.ko" {
		t.Fatalf("load order %v, %v", order, err)
	}
}
