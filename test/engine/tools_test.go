package engine_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/berth-dev/berth/internal/testkit"
)

// cgroupFile reads a cgroup file of a running process (the container's
// init) from the host: v1's controller hierarchy or the v2 tree.
func cgroupFile(t *testing.T, pid, controller, v1name, v2name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var p string
		switch {
		case f[1] == "" && f[0] == "0":
			p = filepath.Join("/sys/fs/cgroup", f[2], v2name)
		case strings.Contains(","+f[1]+",", ","+controller+","):
			p = filepath.Join("/sys/fs/cgroup", f[1], f[2], v1name)
		default:
			continue
		}
		if v, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("no %s cgroup file for pid %s:\n%s", controller, pid, b)
	return ""
}

// TestDockerUpdate changes a running container's limits and restart policy
// with docker update and reads them back from its cgroup.
func TestDockerUpdate(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "-d", "--name", "box", "--memory", "64m", e.ref, "sleep", "600")
	pid := strings.TrimSpace(e.d.Must("inspect", "-f", "{{.State.Pid}}", "box"))
	if v := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); v != fmt.Sprint(64<<20) {
		t.Fatalf("memory limit before: %s", v)
	}
	e.d.Must("update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "0.5", "--pids-limit", "42", "--restart", "always", "box")
	if v := cgroupFile(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); v != fmt.Sprint(96<<20) {
		t.Errorf("memory limit after update: %s", v)
	}
	quota := cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us", "cpu.max")
	if quota != "50000" && !strings.HasPrefix(quota, "50000 ") {
		t.Errorf("cpu quota after --cpus 0.5: %s", quota)
	}
	if v := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); v != "42" {
		t.Errorf("pids.max after update: %s", v)
	}
	if out := e.d.Must("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "box"); out != fmt.Sprintf("%d 500000000 42 always\n", 96<<20) {
		t.Errorf("inspect after update: %q", out)
	}
	// The new policy applies to this run: killed, it comes back.
	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := e.d.Must("inspect", "-f", "{{.RestartCount}} {{.State.Running}}", "box")
		if out == "1 true\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted under the updated policy: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The next run keeps the updated limits.
	pid = strings.TrimSpace(e.d.Must("inspect", "-f", "{{.State.Pid}}", "box"))
	if v := cgroupFile(t, pid, "pids", "pids.max", "pids.max"); v != "42" {
		t.Errorf("pids.max after the restart: %s", v)
	}
	// What the engine cannot change is refused by name.
	msg := e.d.Fail("update", "--blkio-weight", "300", "box")
	mustContain(t, "blkio-weight", msg, "BlkioWeight")
	msg = e.d.Fail("update", "--memory", "1m", "box")
	mustContain(t, "tiny memory", msg, "Minimum memory limit")
}

// TestExportImportDiff: docker diff lists a container's changes, docker
// export writes its root filesystem, and docker import makes an image of
// it again, from stdin and from a URL.
func TestExportImportDiff(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "--name", "changed", e.ref, "sh", "-c", "echo new > /added; echo more >> /etc/passwd; rm /var/www/index.html; mkdir -p /tmp/d/e; touch /tmp/d/e/f")
	diff := e.d.Must("diff", "changed")
	want := "A /added\nC /etc\nC /etc/passwd\nC /tmp\nA /tmp/d\nA /tmp/d/e\nA /tmp/d/e/f\nC /var\nC /var/www\nD /var/www/index.html\n"
	if diff != want {
		t.Errorf("docker diff:\n%s\nwant:\n%s", diff, want)
	}
	if out := e.d.Must("diff", e.d.Must("create", e.ref, "true")[:12]); out != "" {
		t.Errorf("docker diff of an unchanged container: %q", out)
	}

	exported := filepath.Join(t.TempDir(), "rootfs.tar")
	e.d.Must("export", "-o", exported, "changed")
	names := tarNames(t, exported)
	for _, want := range []string{"added", "bin/busybox", "etc/passwd", "tmp/d/e/f"} {
		if !names[want] {
			t.Errorf("export lacks %s", want)
		}
	}
	if names["var/www/index.html"] {
		t.Error("export has the deleted /var/www/index.html")
	}

	// From stdin, with --change and --message.
	f, err := os.Open(exported)
	if err != nil {
		t.Fatal(err)
	}
	r := e.d.Run(f, "import", "--change", `CMD ["cat", "/added"]`, "-m", "from the export", "-", "reimported:1")
	f.Close()
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "sha256:") {
		t.Fatalf("docker import -: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := e.d.Must("run", "--rm", "reimported:1"); out != "new\n" {
		t.Errorf("imported image: %q", out)
	}
	if out := e.d.Must("history", "--format", "{{.Comment}}", "reimported:1"); !strings.Contains(out, "from the export") {
		t.Errorf("history comment: %q", out)
	}
	// From a URL: an http server this test runs.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rootfs.tar" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, exported)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	out := e.d.Must("import", "--change", `CMD ["cat", "/etc/passwd"]`, "http://"+l.Addr().String()+"/rootfs.tar", "fromurl:1")
	if !strings.Contains(out, "sha256:") {
		t.Fatalf("docker import URL: %s", out)
	}
	if out := e.d.Must("run", "--rm", "fromurl:1"); !strings.HasSuffix(out, "more\n") {
		t.Errorf("image imported from a URL: %q", out)
	}
	msg := e.d.Fail("import", "http://"+l.Addr().String()+"/missing.tar", "nothing:1")
	mustContain(t, "missing URL", msg, "404")
}

func tarNames(t *testing.T, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("export is not a valid tar: %v", err)
		}
		names[strings.TrimSuffix(h.Name, "/")] = true
	}
}

// TestDockerSearch asks a registry's search API (a server with Docker
// Hub's /v1/search, run by the test) and one without it (the distribution
// registry, which has none: a clear error).
func TestDockerSearch(t *testing.T) {
	e := newImageEnv(t)
	var gotQuery string
	index := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			http.NotFound(w, r)
			return
		}
		gotQuery = r.URL.RawQuery
		json.NewEncoder(w).Encode(map[string]any{"num_results": 3, "query": r.URL.Query().Get("q"), "results": []map[string]any{
			{"name": "library/busybox", "description": "Busybox base image.", "star_count": 3500, "is_official": true},
			{"name": "someone/busybox-tools", "description": "tools", "star_count": 4},
			{"name": "other/busybox", "description": "another", "star_count": 40},
		}})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: index}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host := l.Addr().String()

	out := e.d.Must("search", "--no-trunc", "--format", "{{.Name}} {{.StarCount}} {{.Description}}", host+"/busybox")
	if out != "library/busybox 3500 Busybox base image.\nsomeone/busybox-tools 4 tools\nother/busybox 40 another\n" {
		t.Errorf("docker search:\n%s", out)
	}
	if out := e.d.Must("search", "--filter", "is-official=true", "--format", "{{.Name}}", host+"/busybox"); out != "library/busybox\n" {
		t.Errorf("docker search --filter is-official=true:\n%s", out)
	}
	if !strings.Contains(gotQuery, "q=busybox") || !strings.Contains(gotQuery, "n=25") {
		t.Errorf("search query sent to the registry: %q", gotQuery)
	}
	out = e.d.Must("search", "--filter", "stars=10", "--filter", "is-official=false", "--limit", "5", "--format", "{{.Name}}", host+"/busybox")
	if out != "other/busybox\n" {
		t.Errorf("docker search with filters:\n%s", out)
	}
	msg := e.d.Fail("search", e.reg.Addr+"/busybox")
	mustContain(t, "registry without search", msg, "has no search API", e.reg.Addr)
}

// TestDistributionInspect: Compose resolves image digests through GET
// /distribution/{name}/json (docker compose config --resolve-image-digests).
func TestDistributionInspect(t *testing.T) {
	e := newImageEnv(t)
	testkit.InstallPlugins(t, e.d.ConfigDir, "compose")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  app:\n    image: "+e.ref+"\n"), 0o644)
	out := e.d.Must("compose", "--project-directory", dir, "config", "--resolve-image-digests")
	// The digest the registry serves, as docker pull reports it.
	pulled := e.d.Must("pull", e.ref)
	i := strings.Index(pulled, "Digest: ")
	if i < 0 {
		t.Fatalf("pull: %s", pulled)
	}
	digest := strings.Fields(pulled[i+len("Digest: "):])[0]
	mustContain(t, "compose config", out, e.reg.Addr+"/busybox:latest@"+digest)

	c := e.agent.HTTPClient()
	resp, err := c.Get("http://berth/distribution/" + e.ref + "/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var di struct {
		Descriptor struct {
			MediaType, Digest string
			Size              int64
		}
		Platforms []struct{ Architecture, OS string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&di); err != nil || resp.StatusCode != 200 {
		t.Fatalf("distribution: %d %v", resp.StatusCode, err)
	}
	if di.Descriptor.Digest != digest || di.Descriptor.Size == 0 || len(di.Platforms) != 1 || di.Platforms[0].OS != "linux" || di.Platforms[0].Architecture != "amd64" {
		t.Errorf("distribution inspect: %+v", di)
	}
	resp2, err := c.Get("http://berth/distribution/" + e.reg.Addr + "/nosuch:latest/json")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound {
		t.Errorf("distribution of a missing image: %d", resp2.StatusCode)
	}
}

// TestAttachWebsocket attaches to a container over /attach/ws with a
// websocket client: stdin goes in as frames, output comes back.
func TestAttachWebsocket(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "-d", "-i", "--name", "cat", e.ref, "sh", "-c", "echo ready; while read l; do echo got:$l; echo err:$l >&2; done")
	conn, err := net.Dial("unix", e.agent.Socket)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := websocket.NewConfig("ws://berth/v1.47/containers/cat/attach/ws?stream=1&stdin=1&stdout=1&stderr=1&logs=1", "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake: %v", err)
	}
	defer ws.Close()
	if _, err := ws.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), "got:hello") || !strings.Contains(got.String(), "err:hello") {
		n, err := ws.Read(buf)
		if err != nil {
			t.Fatalf("read %q, then %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	lines := strings.Fields(got.String())
	sort.Strings(lines)
	if strings.Join(lines, " ") != "err:hello got:hello ready" {
		t.Errorf("over the websocket: %q", got.String())
	}
}
