package wsl

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

func utf16le(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = []byte{0xff, 0xfe}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func TestParseList(t *testing.T) {
	want := []string{"Ubuntu", "berth", "berth-dev"}
	for _, out := range [][]byte{
		[]byte("Ubuntu\nberth\r\nberth-dev\n\n"),
		utf16le("Ubuntu\r\nberth\r\nberth-dev\r\n", false),
		utf16le("Ubuntu\r\nberth\r\nberth-dev\r\n", true),
	} {
		if got := parseList(out); !reflect.DeepEqual(got, want) {
			t.Errorf("parseList(%q) = %q, want %q", out, got, want)
		}
	}
}

func TestDistroName(t *testing.T) {
	for in, want := range map[string]string{"": "berth", "berth": "berth", "dev": "berth-dev"} {
		if got, err := distroName(in); err != nil || got != want {
			t.Errorf("distroName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := distroName("a b"); err == nil {
		t.Error("a name with a space was accepted")
	}
}

func TestDrvfsPath(t *testing.T) {
	got, err := drvfsPath(`C:\Program Files\Berth\berth-agent`)
	if err != nil || got != "/mnt/c/Program Files/Berth/berth-agent" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{`\\server\share\x`, `relative\x`, `1:\x`} {
		if _, err := drvfsPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestScripts runs the scripts the driver hands to the distro's busybox sh,
// here, with a fake agent: quoting survives hostile arguments, the PID file
// is written, and the agent update is atomic and skipped when unchanged.
func TestScripts(t *testing.T) {
	sh, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox (Debian's busybox-static) is not installed")
	}
	dir := t.TempDir()
	// The scripts use absolute distro paths; run them with those paths
	// rewritten into dir.
	rewrite := func(s string) string {
		return strings.NewReplacer(agentPath, filepath.Join(dir, "agent"), pidFile, filepath.Join(dir, "agent.pid")).Replace(s)
	}
	src := filepath.Join(dir, "new agent")
	os.WriteFile(src, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\"\n"), 0o755)

	run := func(script string) string {
		t.Helper()
		out, err := exec.Command(sh, "sh", "-c", rewrite(script)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
		return string(out)
	}
	run(updateScript(src))
	b, err := os.ReadFile(filepath.Join(dir, "agent"))
	if err != nil || !strings.Contains(string(b), "printf") {
		t.Fatalf("agent not installed: %v", err)
	}
	fi1, _ := os.Stat(filepath.Join(dir, "agent"))
	run(updateScript(src))
	fi2, _ := os.Stat(filepath.Join(dir, "agent"))
	if !os.SameFile(fi1, fi2) {
		t.Error("an unchanged agent was copied again")
	}

	hostile := []string{"--label=a b", "--label=it's", "$(touch " + filepath.Join(dir, "pwned") + ")"}
	out := run(agentScript(23750, hostile))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := append([]string{"--root", engineRoot, "--host", "tcp://127.0.0.1:23750", "--cgroup-parent", "/berth", "--auth-token-stdin"}, hostile...)
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("agent saw %q, want %q", lines, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an engine argument ran as a command")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "agent.pid")); err != nil || len(strings.TrimSpace(string(b))) == 0 {
		t.Errorf("no PID file: %v", err)
	}
}
