package driver

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestEnsureDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), DataDisk)
	if err := EnsureDisk(p, 2, slog.Default()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != 2<<30 {
		t.Fatalf("disk: %v %v", fi, err)
	}
	// Grows, never shrinks, keeps content.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("data"), 0)
	f.Close()
	if err := EnsureDisk(p, 3, slog.Default()); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDisk(p, 1, slog.Default()); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	b := make([]byte, 4)
	f, _ = os.Open(p)
	f.ReadAt(b, 0)
	f.Close()
	if fi.Size() != 3<<30 || string(b) != "data" {
		t.Fatalf("after grow and shrink: size %d, content %q", fi.Size(), b)
	}
}

func TestCheckMachineAndParams(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	os.WriteFile(k, nil, 0o644)
	os.WriteFile(i, nil, 0o644)
	os.WriteFile(filepath.Join(dir, SystemDisk), nil, 0o644)
	m := &Machine{CPUs: 1, MemoryMiB: 512, DiskGiB: 1, Kernel: k, Initrd: i,
		EngineArgs: []string{"--insecure-registry=10.0.2.2:5000", "--log-level=debug"},
		Shares:     []Share{{Tag: "home", HostPath: dir, GuestPath: "/home/me"}, {Tag: "ro", HostPath: dir, GuestPath: "/x", ReadOnly: true}}}
	if err := CheckMachine(m); err != nil {
		t.Fatal(err)
	}
	if m.System != filepath.Join(dir, SystemDisk) {
		t.Errorf("system disk %q, want the one next to the initrd", m.System)
	}
	got, err := GuestParams(m, "debug")
	want := []string{"berth.engine=--insecure-registry=10.0.2.2:5000,--log-level=debug", "berth.log=debug",
		"berth.share=home:/home/me", "berth.share=ro:/x:ro"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("params %q, %v; want %q", got, err, want)
	}
	for _, bad := range []func(m *Machine){
		func(m *Machine) { m.Kernel = filepath.Join(dir, "missing") },
		func(m *Machine) { m.System = filepath.Join(dir, "missing") },
		func(m *Machine) { m.MemoryMiB = 64 },
		func(m *Machine) { m.Shares[0].Tag = "a tag" },
		func(m *Machine) { m.Shares[0].GuestPath = "/a b" },
		func(m *Machine) { m.Shares[0].HostPath = k },
	} {
		mm := *m
		mm.Shares = append([]Share(nil), m.Shares...)
		bad(&mm)
		if err := CheckMachine(&mm); err == nil {
			t.Errorf("accepted %+v", mm)
		}
	}
	m.EngineArgs = []string{"--label=a,b"}
	if _, err := GuestParams(m, ""); err == nil || !strings.Contains(err.Error(), "commas") {
		t.Errorf("a comma in an engine argument: %v", err)
	}
}
