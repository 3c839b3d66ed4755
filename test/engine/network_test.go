package engine_test

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

// netEnv is an engine with the network test image: busybox plus a UDP
// echo server (/bin/udpecho PORT), exposing 80/tcp and 5353/udp.
type netEnv struct {
	imageEnv
	img string
}

func newNetEnv(t *testing.T) netEnv {
	t.Helper()
	e := newImageEnv(t)
	bin := filepath.Join(t.TempDir(), "udpecho")
	build := exec.Command("go", "build", "-o", bin, "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v\n%s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img := testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}, ExposedPorts: map[string]struct{}{"80/tcp": {}, "5353/udp": {}}},
		testkit.LayerTar(testkit.BusyboxEntries(t)),
		testkit.LayerTar([]testkit.TarEntry{{Name: "bin/udpecho", Mode: 0o755, Body: body, Type: tar.TypeReg}}))
	ref := e.reg.Addr + "/nettest:latest"
	testkit.Push(t, ref, img)
	e.d.Must("pull", "-q", ref)
	return netEnv{imageEnv: e, img: ref}
}

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for i := 0; i < 50; i++ { // httpd in the container may still be starting
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

const testPage = "<h1>berth test page</h1>\n"

func TestPublishedPortServesPageAndIsFreedOnRemove(t *testing.T) {
	e := newNetEnv(t)
	port := freePort(t)
	id := strings.TrimSpace(e.d.Must("run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port), e.img, "httpd", "-f", "-p", "80", "-h", "/var/www"))
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != testPage {
		t.Fatalf("page through the published port: %q", got)
	}
	mustContain(t, "docker port", e.d.Must("port", "web"), fmt.Sprintf("80/tcp -> 0.0.0.0:%d", port))
	mustContain(t, "docker ps", e.d.Must("ps"), fmt.Sprintf("0.0.0.0:%d->80/tcp", port))

	// Inspect reports the binding as dockerd does (hostd forwards from it).
	info := inspect(t, e.d, "web")
	bindings, _ := field(info, "NetworkSettings", "Ports", "80/tcp").([]any)
	if len(bindings) != 1 || field(bindings[0].(map[string]any), "HostIp") != "0.0.0.0" || field(bindings[0].(map[string]any), "HostPort") != fmt.Sprint(port) {
		t.Fatalf("NetworkSettings.Ports: %v", field(info, "NetworkSettings", "Ports"))
	}
	ip, _ := field(info, "NetworkSettings", "Networks", "bridge", "IPAddress").(string)
	if ip == "" {
		t.Fatalf("no address on the bridge: %v", field(info, "NetworkSettings", "Networks"))
	}
	if got := httpGet(t, "http://"+ip+":80/"); got != testPage {
		t.Fatalf("page at the container's address: %q", got)
	}

	// The port is taken: a clear error, and the failed container holds nothing.
	msg := e.d.Fail("run", "-d", "--name", "web2", "-p", fmt.Sprintf("%d:80", port), e.img, "httpd", "-f", "-p", "80")
	mustContain(t, "second publish", msg, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", port))
	e.d.Must("rm", "web2")

	// Removing the container frees its address and its port.
	e.d.Must("rm", "-f", "web")
	var nets []map[string]any
	json.Unmarshal([]byte(e.d.Must("network", "inspect", "bridge")), &nets)
	if c := field(nets[0], "Containers").(map[string]any); len(c) != 0 || len(nets) != 1 {
		t.Fatalf("bridge still lists containers after rm: %v", c)
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatalf("port %d not freed by rm: %v", port, err)
	}
	l.Close()
	_ = id
}

func TestPublishAllAndUDP(t *testing.T) {
	e := newNetEnv(t)
	e.d.Must("run", "-d", "--name", "svc", "-P", e.img, "sh", "-c", "udpecho 5353 & exec httpd -f -p 80 -h /var/www")
	ports := e.d.Must("port", "svc")
	var tcpPort, udpPort int
	for _, line := range strings.Split(strings.TrimSpace(ports), "\n") {
		var p int
		if n, _ := fmt.Sscanf(line, "80/tcp -> 0.0.0.0:%d", &p); n == 1 {
			tcpPort = p
		}
		if n, _ := fmt.Sscanf(line, "5353/udp -> 0.0.0.0:%d", &p); n == 1 {
			udpPort = p
		}
	}
	if tcpPort == 0 || udpPort == 0 {
		t.Fatalf("-P did not publish the image's EXPOSE ports:\n%s", ports)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", tcpPort)); got != testPage {
		t.Fatalf("page through the -P port: %q", got)
	}
	if got := udpAsk(t, fmt.Sprintf("127.0.0.1:%d", udpPort), "ping"); got != "echo: ping" {
		t.Fatalf("udp through -P: %q", got)
	}

	// An explicit UDP publish.
	port := freePort(t)
	e.d.Must("run", "-d", "--name", "udp", "-p", fmt.Sprintf("%d:7000/udp", port), e.img, "udpecho", "7000")
	if got := udpAsk(t, fmt.Sprintf("127.0.0.1:%d", port), "hello"); got != "echo: hello" {
		t.Fatalf("udp publish: %q", got)
	}
}

// udpAsk sends msg until an answer comes (the server may still be starting).
func udpAsk(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1024)
	for i := 0; i < 50; i++ {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(buf); err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("no UDP answer from %s", addr)
	return ""
}

func TestUserNetworkByNameAndRemoveInUse(t *testing.T) {
	e := newNetEnv(t)
	e.d.Must("network", "create", "appnet")
	mustContain(t, "network ls", e.d.Must("network", "ls"), "appnet", "bridge", "host", "none")
	e.d.Must("run", "-d", "--name", "db", "--network", "appnet", "--network-alias", "database", e.img, "httpd", "-f", "-p", "80", "-h", "/var/www")
	for _, name := range []string{"db", "database"} {
		r := e.d.Run(nil, "run", "--rm", "--network", "appnet", e.img, "sh", "-c",
			"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://"+name+"/ && exit 0; sleep 0.2; done; exit 1")
		if r.Code != 0 || r.Stdout != testPage {
			t.Fatalf("reach %s by name: exit %d stdout %q stderr %q", name, r.Code, r.Stdout, r.Stderr)
		}
	}
	out := e.d.Must("run", "--rm", "--network", "appnet", e.img, "cat", "/etc/resolv.conf")
	mustContain(t, "resolv.conf on a user network", out, "nameserver 127.0.0.11")

	msg := e.d.Fail("network", "rm", "appnet")
	mustContain(t, "network rm in use", msg, "has active endpoints", "db")
	e.d.Must("rm", "-f", "db")
	e.d.Must("network", "rm", "appnet")
	msg = e.d.Fail("run", "--rm", "--network", "nosuchnet", e.img, "true")
	mustContain(t, "unknown network", msg, "network nosuchnet not found")
}

func TestBridgeOutboundHostAndModes(t *testing.T) {
	e := newNetEnv(t)
	// A server on the host, reached through host.docker.internal (outbound
	// from the bridge: routing and NAT).
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the host") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	out := e.d.Must("run", "--rm", e.img, "wget", "-qO-", fmt.Sprintf("http://host.docker.internal:%d/", port))
	if out != "from the host" {
		t.Fatalf("host.docker.internal: %q", out)
	}
	out = e.d.Must("run", "--rm", "--add-host", "myhost:host-gateway", "--add-host", "fixed:10.1.2.3", e.img, "cat", "/etc/hosts")
	mustContain(t, "/etc/hosts", out, "\tmyhost\n", "10.1.2.3\tfixed\n", "\thost.docker.internal\n")
	out = e.d.Must("run", "--rm", "--dns", "10.9.9.9", "--dns-search", "example.org", e.img, "cat", "/etc/resolv.conf")
	mustContain(t, "--dns", out, "nameserver 10.9.9.9\n", "search example.org\n")

	// --network none: loopback only.
	out = e.d.Must("run", "--rm", "--network", "none", e.img, "ip", "-o", "link")
	if !strings.Contains(out, "lo:") || strings.Contains(out, "eth0") {
		t.Fatalf("--network none links: %s", out)
	}
	// --network host: the host's interfaces.
	out = e.d.Must("run", "--rm", "--network", "host", e.img, "ip", "-o", "link")
	hostLinks, _ := net.Interfaces()
	for _, i := range hostLinks {
		if !strings.Contains(out, i.Name+":") && !strings.Contains(out, i.Name+"@") {
			t.Fatalf("--network host: %s missing in\n%s", i.Name, out)
		}
	}
	// --network container:NAME shares the other's namespace.
	e.d.Must("run", "-d", "--name", "first", e.img, "httpd", "-f", "-p", "8081", "-h", "/var/www")
	r := e.d.Run(nil, "run", "--rm", "--network", "container:first", e.img, "sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8081/ && exit 0; sleep 0.2; done; exit 1")
	if r.Code != 0 || r.Stdout != testPage {
		t.Fatalf("container: network: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
}
