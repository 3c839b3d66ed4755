package cli

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

func TestNetworkVolumeAndHousekeepingCommands(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/tools/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	h := a.Host
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := berthIO(t, h, nil, args...)
		if code != 0 {
			t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	must("pull", ref)
	must("network", "create", "clinet")
	if out := must("network", "ls"); !strings.Contains(out, "clinet") || !strings.Contains(out, "bridge") {
		t.Fatalf("network ls:\n%s", out)
	}
	must("volume", "create", "clivol")
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	must("run", "-d", "--name", "web", "--network", "clinet", "-p", "127.0.0.1:"+itoa(port)+":80", "-v", "clivol:/data",
		ref, "httpd", "-f", "-p", "80", "-h", "/var/www")
	if out := must("port", "web"); out != "80/tcp -> 127.0.0.1:"+itoa(port)+"\n" {
		t.Fatalf("port: %q", out)
	}
	if out := must("port", "web", "80"); out != "127.0.0.1:"+itoa(port)+"\n" {
		t.Fatalf("port web 80: %q", out)
	}
	// cp both ways, with a symlink.
	src := filepath.Join(t.TempDir(), "tree")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("content"), 0o640)
	os.Symlink("d/f", filepath.Join(src, "l"))
	must("cp", src, "web:/data/")
	back := filepath.Join(t.TempDir(), "back")
	must("cp", "web:/data/tree", back)
	if b, _ := os.ReadFile(filepath.Join(back, "d", "f")); string(b) != "content" {
		t.Fatalf("cp round trip: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(back, "l")); l != "d/f" {
		t.Fatalf("symlink after cp: %q", l)
	}
	if out := must("stats", "--no-stream", "web"); !strings.Contains(out, "web") || !strings.Contains(out, "MEM USAGE / LIMIT") {
		t.Fatalf("stats:\n%s", out)
	}
	if out := must("system", "df"); !strings.Contains(out, "Local Volumes") {
		t.Fatalf("system df:\n%s", out)
	}
	_, errs, code := berthIO(t, h, nil, "network", "rm", "clinet")
	if code == 0 || !strings.Contains(errs, "has active endpoints") {
		t.Fatalf("network rm in use: %d %q", code, errs)
	}
	must("rm", "-f", "web")
	must("run", "--name", "stopped", ref, "true")
	if out := must("container", "prune", "-f"); !strings.Contains(out, "Deleted Containers:") {
		t.Fatalf("container prune: %q", out)
	}
	must("network", "rm", "clinet")
	must("volume", "rm", "clivol")
	if out := must("volume", "ls", "-q"); out != "" {
		t.Fatalf("volumes left: %q", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
