//go:build !windows

package setup

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCLIOnPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "berth")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o755)
	taken := filepath.Join(ro, "berth")
	os.WriteFile(taken, []byte("someone else's"), 0o755)
	local := filepath.Join(dir, "home", ".local", "bin", "berth")

	where, err := cliOnPath(exe, []string{taken, local}, false)
	if err != nil || where != local {
		t.Fatalf("linked at %q (%v), want %s: a file not ours is left alone", where, err, local)
	}
	if got, _ := os.Readlink(local); got != exe {
		t.Fatalf("link points at %q", got)
	}
	if b, _ := os.ReadFile(taken); string(b) != "someone else's" {
		t.Fatal("an existing file was replaced")
	}
	if _, err := cliOnPath(exe, []string{taken, local}, false); err != nil {
		t.Fatalf("again: %v", err)
	}
	if _, err := cliOnPath(exe, []string{taken, local}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(local); !os.IsNotExist(err) {
		t.Fatal("link left after remove")
	}
	if _, err := os.Stat(taken); err != nil {
		t.Fatal("remove took a file that was not ours")
	}
}
