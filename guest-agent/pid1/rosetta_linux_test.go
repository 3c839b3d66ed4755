package pid1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// unescape decodes binfmt_misc's \xHH escapes as the kernel does.
func unescape(t *testing.T, s string) []byte {
	var out []byte
	for len(s) > 0 {
		if strings.HasPrefix(s, `\x`) {
			b, err := strconv.ParseUint(s[2:4], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			out, s = append(out, byte(b)), s[4:]
			continue
		}
		out, s = append(out, s[0]), s[1:]
	}
	return out
}

// TestRosettaBinfmt: the registration matches real x86-64 executables and
// shared objects, and not arm64 ones (the guest's own) nor scripts.
func TestRosettaBinfmt(t *testing.T) {
	f := strings.Split(rosettaBinfmt, ":")
	if len(f) != 8 || f[1] != "rosetta" || f[2] != "M" || f[6] != rosettaDir+"/rosetta" || f[7] != "CF" {
		t.Fatalf("registration %q", rosettaBinfmt)
	}
	magic, mask := unescape(t, f[4]), unescape(t, f[5])
	if len(magic) != len(mask) {
		t.Fatalf("magic %d bytes, mask %d", len(magic), len(mask))
	}
	matches := func(path string) bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < len(magic) {
			return false
		}
		for i := range magic { // as the kernel compares (binfmt_misc.c)
			if (b[i]^magic[i])&mask[i] != 0 {
				return false
			}
		}
		return true
	}
	x86 := []string{"/bin/true"} // an x86-64 PIE: ET_DYN
	if p, err := exec.LookPath("busybox"); err == nil {
		x86 = append(x86, p) // static: ET_EXEC
	}
	if m, _ := filepath.Glob("/lib/x86_64-linux-gnu/libc.so.6"); len(m) > 0 {
		x86 = append(x86, m[0])
	}
	for _, p := range x86 {
		if b, _ := os.ReadFile(p); len(b) < 20 || b[18] != 0x3e {
			t.Skipf("%s is not x86-64 (this test runs on amd64 hosts)", p)
		}
		if !matches(p) {
			t.Errorf("%s (x86-64) does not match", p)
		}
	}
	arm := filepath.Join(testkit.RepoRoot(), "bin", "linux-arm64", "berth-agent")
	if _, err := os.Stat(arm); err == nil {
		if matches(arm) {
			t.Errorf("%s (arm64) matches", arm)
		}
	}
	script := filepath.Join(t.TempDir(), "s")
	os.WriteFile(script, append([]byte("#!/bin/sh\n"), bytes.Repeat([]byte{' '}, 32)...), 0o755)
	if matches(script) {
		t.Error("a script matches")
	}
}
