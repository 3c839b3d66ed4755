package engine_test

import (
	"archive/tar"
	"crypto/rand"
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
	"github.com/miekg/dns"

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

// wgetLoop is a shell loop that fetches url, retrying while the server
// starts. (Debian's static busybox wget crashes with -T: timeout(1) bounds
// a fetch instead.)
func wgetLoop(url string) string {
	return "for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -qO- " + url + " && exit 0; sleep 0.2; done; exit 1"
}

func TestPublishOnAddressAndPortTakenElsewhere(t *testing.T) {
	e := newNetEnv(t)
	// -p IP:HOST:CONTAINER publishes on that address only.
	port := freePort(t)
	e.d.Must("run", "-d", "--name", "local", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), e.img, "httpd", "-f", "-p", "80", "-h", "/var/www")
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != testPage {
		t.Fatalf("page on 127.0.0.1:%d: %q", port, got)
	}
	mustContain(t, "docker port", e.d.Must("port", "local", "80"), fmt.Sprintf("127.0.0.1:%d", port))
	b, _ := field(inspect(t, e.d, "local"), "NetworkSettings", "Ports", "80/tcp").([]any)
	if len(b) != 1 || field(b[0].(map[string]any), "HostIp") != "127.0.0.1" {
		t.Fatalf("NetworkSettings.Ports[80/tcp]: %v", b)
	}
	if addr := nonLoopbackAddr(); addr != "" {
		// Not on the host's other addresses: nothing answers there…
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(addr, fmt.Sprint(port)), time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("port %d published on 127.0.0.1 answers on %s too", port, addr)
		}
		// …so another container may publish the same port there.
		e.d.Must("run", "-d", "--name", "other", "-p", fmt.Sprintf("%s:%d:80", addr, port), e.img, "httpd", "-f", "-p", "80", "-h", "/var/www")
		if got := httpGet(t, fmt.Sprintf("http://%s:%d/", addr, port)); got != testPage {
			t.Fatalf("page on %s:%d: %q", addr, port, got)
		}
		msg := e.d.Fail("run", "-d", "--name", "all", "-p", fmt.Sprintf("%d:80", port), e.img, "httpd", "-f", "-p", "80")
		mustContain(t, "publish on all addresses over one held on 127.0.0.1", msg, fmt.Sprintf(":%d failed: port is already allocated", port))
	}
	msg := e.d.Fail("run", "--rm", "-p", "300.1.2.3:8080:80", e.img, "true")
	mustContain(t, "bad address", msg, "300.1.2.3")

	// A port another program holds: a clear error at start, and the
	// container starts once the port is free.
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := l.Addr().(*net.TCPAddr).Port
	msg = e.d.Fail("run", "-d", "--name", "late", "-p", fmt.Sprintf("%d:80", taken), e.img, "httpd", "-f", "-p", "80", "-h", "/var/www")
	mustContain(t, "port held by another program", msg, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", taken))
	if st := field(inspect(t, e.d, "late"), "State", "Status"); st != "created" {
		t.Fatalf("container whose port was taken: state %v", st)
	}
	l.Close()
	e.d.Must("start", "late")
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", taken)); got != testPage {
		t.Fatalf("page once the port was free: %q", got)
	}
}

// nonLoopbackAddr is an IPv4 address of the host that is neither loopback
// nor on a container bridge, or "".
func nonLoopbackAddr() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "br-") || strings.HasPrefix(i.Name, "docker") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

func TestNetworkConnectDisconnect(t *testing.T) {
	e := newNetEnv(t)
	e.d.Must("network", "create", "joinnet")
	e.d.Must("run", "-d", "--name", "srv", e.img, "httpd", "-f", "-p", "80", "-h", "/var/www")
	client := func(url string) testkit.Result {
		return e.d.Run(nil, "run", "--rm", "--network", "joinnet", e.img, "sh", "-c", wgetLoop(url))
	}
	if r := e.d.Run(nil, "run", "--rm", "--network", "joinnet", e.img, "timeout", "3", "wget", "-qO-", "http://srv/"); r.Code == 0 {
		t.Fatalf("srv is reachable from joinnet before it was connected: %q", r.Stdout)
	}

	e.d.Must("network", "connect", "--alias", "web", "joinnet", "srv")
	nets, _ := field(inspect(t, e.d, "srv"), "NetworkSettings", "Networks").(map[string]any)
	if _, ok := nets["bridge"]; !ok || len(nets) != 2 {
		t.Fatalf("networks after connect: %v", nets)
	}
	ip, _ := field(nets["joinnet"].(map[string]any), "IPAddress").(string)
	if ip == "" {
		t.Fatalf("no address on joinnet: %v", nets["joinnet"])
	}
	for _, name := range []string{"srv", "web", ip} {
		if r := client("http://" + name + "/"); r.Code != 0 || r.Stdout != testPage {
			t.Fatalf("reach the connected container as %s: exit %d %q %q", name, r.Code, r.Stdout, r.Stderr)
		}
	}
	// Its first user network gives a default-bridge container the embedded
	// DNS server, as with dockerd: names on joinnet now resolve inside it.
	e.d.Must("run", "-d", "--name", "peer", "--network", "joinnet", e.img, "sleep", "60")
	peerIP, _ := field(inspect(t, e.d, "peer"), "NetworkSettings", "Networks", "joinnet", "IPAddress").(string)
	out := e.d.Must("exec", "srv", "sh", "-c", "cat /etc/resolv.conf; nslookup peer")
	mustContain(t, "resolv.conf after connect", out, "nameserver 127.0.0.11\n")
	mustContain(t, "a peer's name from the connected container", out, "Address: "+peerIP)
	e.d.Must("rm", "-f", "peer")
	msg := e.d.Fail("network", "connect", "joinnet", "srv")
	mustContain(t, "second connect", msg, "already exists in network joinnet")
	msg = e.d.Fail("network", "rm", "joinnet")
	mustContain(t, "rm of a network in use", msg, "has active endpoints")

	e.d.Must("network", "disconnect", "joinnet", "srv")
	nets, _ = field(inspect(t, e.d, "srv"), "NetworkSettings", "Networks").(map[string]any)
	if _, ok := nets["joinnet"]; ok || len(nets) != 1 {
		t.Fatalf("networks after disconnect: %v", nets)
	}
	out = e.d.Must("exec", "srv", "cat", "/etc/resolv.conf") // the resolver stays, as with dockerd
	mustContain(t, "resolv.conf after disconnect", out, "nameserver 127.0.0.11\n")
	r := e.d.Run(nil, "run", "--rm", "--network", "joinnet", e.img, "sh", "-c", "nslookup srv 127.0.0.11 || timeout 3 wget -qO- http://"+ip+"/")
	if r.Code == 0 || strings.Contains(r.Stdout, testPage) {
		t.Fatalf("srv still reachable on joinnet after disconnect: %q %q", r.Stdout, r.Stderr)
	}
	// Still on the default bridge.
	bridgeIP, _ := field(nets["bridge"].(map[string]any), "IPAddress").(string)
	if got := httpGet(t, "http://"+bridgeIP+"/"); got != testPage {
		t.Fatalf("page on the bridge after disconnect: %q", got)
	}
	msg = e.d.Fail("network", "disconnect", "joinnet", "srv")
	mustContain(t, "second disconnect", msg, "is not connected to network joinnet")

	// A stopped container is connected for its next start.
	e.d.Must("stop", "-t", "1", "srv")
	e.d.Must("network", "connect", "joinnet", "srv")
	e.d.Must("start", "srv")
	if r := client("http://srv/"); r.Code != 0 || r.Stdout != testPage {
		t.Fatalf("reach srv connected while stopped: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	e.d.Must("rm", "-f", "srv")
	e.d.Must("network", "rm", "joinnet")
}

// TestUserNetworkDNSForwardsToDNSFlag: on a user network the container's
// resolver is the embedded server, which answers container names and
// host.docker.internal itself and forwards other names to --dns.
func TestUserNetworkDNSForwardsToDNSFlag(t *testing.T) {
	e := newNetEnv(t)
	// An upstream resolver of our own on a loopback address no one else
	// uses (the embedded server forwards from the host's namespace, port 53).
	var b [3]byte
	rand.Read(b[:])
	upstream := fmt.Sprintf("127.%d.%d.%d", 100+b[0]%100, b[1], 1+b[2]%250)
	pc, err := net.ListenPacket("udp4", upstream+":53")
	if err != nil {
		t.Skipf("cannot serve DNS on %s:53: %v", upstream, err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Name == "outside.test." && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(10, 20, 30, 40)})
		} else if q.Name != "outside.test." {
			m.SetRcode(r, dns.RcodeNameError)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })

	e.d.Must("network", "create", "dnsnet")
	e.d.Must("run", "-d", "--name", "peer", "--network", "dnsnet", e.img, "sleep", "60")
	peerIP, _ := field(inspect(t, e.d, "peer"), "NetworkSettings", "Networks", "dnsnet", "IPAddress").(string)
	out := e.d.Must("run", "--rm", "--network", "dnsnet", "--dns", upstream, e.img, "sh", "-c",
		"cat /etc/resolv.conf; nslookup outside.test; nslookup peer; grep host.docker.internal /etc/hosts; nslookup host.docker.internal")
	mustContain(t, "resolv.conf", out, "nameserver 127.0.0.11\n")
	if strings.Contains(out, "nameserver "+upstream) {
		t.Fatalf("--dns on a user network should stay behind the embedded server:\n%s", out)
	}
	mustContain(t, "a name forwarded to --dns", out, "Address: 10.20.30.40")
	mustContain(t, "a container's name", out, "Address: "+peerIP)
	var gw string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "host.docker.internal" {
			gw = f[0]
		}
	}
	if gw == "" || strings.Count(out, gw) < 2 {
		t.Fatalf("host.docker.internal from the embedded DNS does not match /etc/hosts (%q):\n%s", gw, out)
	}
}
