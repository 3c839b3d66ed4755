package engine_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/internal/testkit"
)

// markedImage is busybox with /marker saying where it came from.
func markedImage(t *testing.T, marker string) v1.Image {
	return testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"cat", "/marker"}},
		testkit.LayerTar(append(testkit.BusyboxEntries(t), testkit.TarEntry{Name: "marker", Body: []byte(marker + "\n")})))
}

// deadProxy is a loopback address nothing listens on: given as the proxy,
// it keeps any request that would leave this machine (a builder asking
// the real Docker Hub) from leaving it.
func deadProxy(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestRegistryMirrors: Docker Hub's images come from the first mirror that
// has them, else from Docker Hub (a local registry standing for docker.io
// through the engine's test hook); other registries are never mirrored.
// BuildKit's builder uses the same mirrors.
func TestRegistryMirrors(t *testing.T) {
	// Docker Hub needs a login here, so the test sees credentials reach
	// it and never the mirror (whose requests a recorder watches).
	hub := testkit.StartRegistry(t, testkit.RegistryOptions{Auth: true})
	mirror := testkit.StartRegistry(t, testkit.RegistryOptions{})
	other := testkit.StartRegistry(t, testkit.RegistryOptions{})
	hubAuth := remote.WithAuth(&authn.Basic{Username: hub.User, Password: hub.Pass})
	testkit.Push(t, hub.Addr+"/library/busybox:latest", markedImage(t, "from the hub"), hubAuth)
	testkit.Push(t, mirror.Addr+"/library/busybox:latest", markedImage(t, "from the mirror"))
	testkit.Push(t, hub.Addr+"/library/onlyhub:latest", markedImage(t, "hub only"), hubAuth)
	testkit.Push(t, mirror.Addr+"/library/buildbase:latest", markedImage(t, "build base from the mirror"))
	testkit.Push(t, other.Addr+"/library/busybox:latest", markedImage(t, "another registry"))
	var credsToMirror, mirrorRequests atomic.Int32
	rec := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		mirrorRequests.Add(1)
		if pr.In.Header.Get("Authorization") != "" {
			credsToMirror.Add(1)
		}
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", mirror.Addr
	}}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	msrv := &http.Server{Handler: rec}
	go msrv.Serve(ml)
	t.Cleanup(func() { msrv.Close() })

	down := deadProxy(t) // a mirror that is down is passed over
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{
		"--registry-mirror", down, "--registry-mirror", "http://" + ml.Addr().String(), "--test-docker-hub", hub.Addr,
		"--http-proxy", deadProxy(t), "--https-proxy", deadProxy(t)}})
	d := testkit.NewDocker(t, a.Host)
	r := d.Run(strings.NewReader(hub.Pass), "login", "-u", hub.User, "--password-stdin")
	if r.Code != 0 {
		t.Fatalf("docker login (Docker Hub, standing in): %s %s", r.Stdout, r.Stderr)
	}

	d.Must("pull", "busybox")
	if out := d.Must("run", "--rm", "busybox"); out != "from the mirror\n" {
		t.Errorf("docker.io/library/busybox came %q", out)
	}
	d.Must("pull", "onlyhub")
	if out := d.Must("run", "--rm", "onlyhub"); out != "hub only\n" {
		t.Errorf("fallback to the hub: %q", out)
	}
	d.Must("pull", other.Addr+"/library/busybox")
	if out := d.Must("run", "--rm", other.Addr+"/library/busybox"); out != "another registry\n" {
		t.Errorf("another registry's image: %q", out)
	}
	msg := d.Fail("pull", "nowhere")
	mustContain(t, "missing everywhere", msg, "nowhere")
	if mirrorRequests.Load() == 0 || credsToMirror.Load() != 0 {
		t.Errorf("the mirror saw %d requests, %d with the user's credentials (want some, none)", mirrorRequests.Load(), credsToMirror.Load())
	}
	info := d.Must("info")
	mustContain(t, "docker info", info, "Registry Mirrors:", down+"/", "http://"+ml.Addr().String()+"/")

	// BuildKit pulls its base image through the mirror too (nothing else
	// has it: Docker Hub is out of reach here).
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM buildbase\nRUN cp /marker /built\nCMD [\"cat\", \"/built\"]\n"), 0o644)
	d.Must("build", "-t", "frommirror", dir)
	if out := d.Must("run", "--rm", "frommirror"); out != "build base from the mirror\n" {
		t.Errorf("BuildKit's base image: %q", out)
	}
}

// forwardProxy is an HTTP forward proxy (absolute-URI requests and
// CONNECT) that only knows the names in routes and counts what it served.
type forwardProxy struct {
	routes map[string]string // host:port as asked → loopback address
	mu     sync.Mutex
	hits   map[string]int // "METHOD host/path"
}

func (p *forwardProxy) count(k string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hits[k]++
}

func (p *forwardProxy) served(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.hits {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target, ok := p.routes[r.Host]
	if !ok {
		http.Error(w, "this proxy only reaches the test's registry", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		p.count("CONNECT " + r.Host)
		up, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, buf); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
		return
	}
	p.count(r.Method + " " + r.Host + r.URL.Path)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = "http", target
		pr.Out.Host = r.Host
	}}
	rp.ServeHTTP(w, r)
}

// TestProxy: with direct access impossible (the registry's name exists only
// in the proxy: .invalid never resolves), pulls, pushes, logins and
// BuildKit's pulls go through the proxy from the engine's settings; builds
// see it as the predefined proxy build args; docker info shows it.
func TestProxy(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	_, port, _ := net.SplitHostPort(reg.Addr)
	name := "registry.berth-test.invalid:" + port
	fp := &forwardProxy{routes: map[string]string{name: reg.Addr}, hits: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fp}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	proxy := "http://" + l.Addr().String()
	testkit.Push(t, reg.Addr+"/busybox:latest", markedImage(t, "through the proxy"))

	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--http-proxy", proxy, "--https-proxy", proxy,
		"--no-proxy", "localhost,127.0.0.1", "--insecure-registry", name}})
	d := testkit.NewDocker(t, a.Host)
	ref := name + "/busybox:latest"

	d.Must("pull", ref)
	if out := d.Must("run", "--rm", ref); out != "through the proxy\n" {
		t.Errorf("pulled through the proxy: %q", out)
	}
	if fp.served("GET "+name+"/v2/busybox/manifests/") == 0 {
		t.Errorf("the proxy served no manifest: %v", fp.hits)
	}
	d.Must("tag", ref, name+"/pushed:1")
	d.Must("push", name+"/pushed:1")
	if fp.served("PUT "+name+"/v2/pushed/manifests/1") != 1 {
		t.Errorf("the push did not go through the proxy: %v", fp.hits)
	}
	r := d.Run(strings.NewReader("secret"), "login", "-u", "someone", "--password-stdin", name)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
		t.Errorf("docker login: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	info := d.Must("info")
	mustContain(t, "docker info", info, "HTTP Proxy: "+proxy, "HTTPS Proxy: "+proxy, "No Proxy: localhost,127.0.0.1")

	// BuildKit (buildx): its pull goes through the proxy (--pull: the
	// engine has the image, buildx would take it from there), and RUN
	// sees the proxy as the predefined build args.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nRUN echo \"$HTTP_PROXY $https_proxy $NO_PROXY\" > /proxy\nCMD [\"cat\", \"/proxy\"]\n"), 0o644)
	before := fp.served("GET " + name + "/v2/busybox/manifests/")
	d.Must("build", "--pull", "-t", "bkproxy", dir)
	if fp.served("GET "+name+"/v2/busybox/manifests/") == before {
		t.Errorf("BuildKit's pull did not go through the proxy: %v", fp.hits)
	}
	// The builder has the proxy in its environment, not its argv (which
	// other users can read natively).
	cmdline, environ := builderProc(t, a)
	if strings.Contains(cmdline, proxy) || !strings.Contains(environ, "HTTPS_PROXY="+proxy) {
		t.Errorf("berth-buildkitd: proxy in argv %v, in environment %v", strings.Contains(cmdline, proxy), strings.Contains(environ, "HTTPS_PROXY="+proxy))
	}
	want := proxy + " " + proxy + " localhost,127.0.0.1\n"
	if out := d.Must("run", "--rm", "bkproxy"); out != want {
		t.Errorf("BuildKit RUN sees %q, want %q", out, want)
	}
	if out := d.Must("history", "--no-trunc", "bkproxy"); strings.Contains(out, proxy) {
		t.Errorf("the proxy is in the image's history:\n%s", out)
	}
	// The classic builder too; the client's own build arg wins.
	d.Classic().Must("build", "-t", "classicproxy", dir)
	if out := d.Must("run", "--rm", "classicproxy"); out != want {
		t.Errorf("classic RUN sees %q, want %q", out, want)
	}
	d.Must("build", "--no-cache", "--build-arg", "HTTP_PROXY=http://mine:3128", "-t", "ownproxy", dir)
	if out := d.Must("run", "--rm", "ownproxy"); !strings.HasPrefix(out, "http://mine:3128 ") {
		t.Errorf("the client's HTTP_PROXY build arg: %q", out)
	}
}

// builderProc finds the agent's berth-buildkitd and returns its command
// line and environment.
func builderProc(t *testing.T, a *testkit.Agent) (cmdline, environ string) {
	t.Helper()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "berth-buildkitd") || !strings.Contains(string(b), a.Root) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), strings.ReplaceAll(string(env), "\x00", "\n")
	}
	t.Fatal("no berth-buildkitd of this agent is running")
	return "", ""
}
