//go:build linux

// berth-agent is the Berth engine: it serves the Docker Engine API and runs
// containers with libcontainer. In the VM, PID 1 (berth-init) runs it from
// the system disk; on a Linux host it runs as a plain root process (the
// "native" driver):
//
//	berth-agent --root /var/lib/berth --host unix:///run/berth/docker.sock
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/guest-agent/builder"
	"github.com/berth-dev/berth/guest-agent/dockerinit"
	"github.com/berth-dev/berth/guest-agent/engineapi"
	"github.com/berth-dev/berth/internal/connauth"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/engine"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	// libcontainer re-executes this binary as `berth-agent init` inside the
	// new namespaces; that process must do nothing but become the container.
	if container.IsInit() {
		container.Init()
		os.Exit(255) // Init only returns on failure, after reporting it.
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if filepath.Base(os.Args[0]) == dockerinit.Name {
		// `docker run --init`: this binary is the container's PID 1.
		os.Exit(dockerinit.Main(os.Args[1:]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-agent:", err)
		os.Exit(1)
	}
}

// envProxy reads a proxy variable as Go's tools do: upper case, else lower.
func envProxy(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// sinceExec is how long ago this process started (Linux: /proc/self/stat
// starttime against CLOCK_BOOTTIME), to see what runtime and package
// initialisation cost, slow under emulation.
func sinceExec() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 20 {
		return 0
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return 0
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano()) - time.Duration(ticks)*10*time.Millisecond // USER_HZ is 100
}

func run() error {
	var (
		hosts, insecure, logOpts      listFlag
		mirrors, noProxy, hostSockets listFlag
		root                          = flag.String("root", "/var/lib/berth", "directory holding all engine state")
		cgroupParent                  = flag.String("cgroup-parent", "/berth", "cgroup under which containers are placed")
		logLevel                      = flag.String("log-level", "info", "debug, info, warn or error")
		showVersion                   = flag.Bool("version", false, "print the version and exit")
		hostGateway                   = flag.String("host-gateway-ip", "", "address host.docker.internal resolves to (default: the bridge's gateway, i.e. this host)")
		tokenStdin                    = flag.Bool("auth-token-stdin", false, "read a connection token from the first line of stdin; every TCP connection must open with it (the WSL driver's port, which other local users can reach)")
		buildkitd                     = flag.String("buildkitd", builder.DefaultBinary(), "the BuildKit builder binary, started on the first BuildKit request")
		buildCacheMax                 = flag.Int64("build-cache-max", 0, "bytes of BuildKit cache kept after a build (0: a share of the disk)")
		waitFD                        = flag.Int("wait-fd", -1, "wait for a byte on this file descriptor (a socket) before opening the state, after writing one there (the VM's PID 1 starts the engine early and lets it go once the data disk is mounted); end of file means exit")
	)
	flag.Var(&hosts, "host", "address to serve the Engine API on (repeatable): unix:///path or tcp://ip:port")
	flag.Var(&logOpts, "log-opt", "default json-file log option for containers, KEY=VALUE (repeatable), e.g. max-size=20m")
	flag.Var(&insecure, "insecure-registry", "registry host[:port] reached over plain HTTP (repeatable)")
	flag.Var(&mirrors, "registry-mirror", "registry mirror (http(s)://host[:port]) tried before Docker Hub for its images, in order (repeatable)")
	httpProxy := flag.String("http-proxy", envProxy("HTTP_PROXY"), "proxy for plain-HTTP registries and downloads (default $HTTP_PROXY)")
	httpsProxy := flag.String("https-proxy", envProxy("HTTPS_PROXY"), "proxy for HTTPS registries and downloads (default $HTTPS_PROXY)")
	flag.Var(&noProxy, "no-proxy", "hosts, domains or CIDRs reached without the proxy, comma-separated (repeatable; default $NO_PROXY)")
	flag.Var(&hostSockets, "host-socket-path", "a path that names this engine's socket on the host (hostd's forwarded socket, /var/run/docker.sock); a bind mount of it gets the engine's own unix socket (repeatable)")
	dockerHub := flag.String("test-docker-hub", "", "tests only: the registry host:port that stands for docker.io")
	flag.Parse()
	if len(noProxy) == 0 && envProxy("NO_PROXY") != "" {
		noProxy = listFlag{envProxy("NO_PROXY")}
	}
	if *showVersion {
		fmt.Println("berth-agent", engineapi.Version)
		return nil
	}
	if len(hosts) == 0 {
		hosts = listFlag{"unix:///run/berth/docker.sock"}
	}
	execTime := sinceExec()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (it creates namespaces, cgroups and mounts)")
	}
	if !container.SeccompEnabled {
		// Containers would run without dockerd's default filter.
		return fmt.Errorf("built without seccomp support: build with cgo and -tags seccomp (make build)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *waitFD >= 0 {
		gate := os.NewFile(uintptr(*waitFD), "gate")
		gate.Write([]byte{0}) // here: PID 1 times the engine's start with it
		var b [1]byte
		n, _ := gate.Read(b[:])
		gate.Close()
		if n == 0 {
			log.Info("not started: the machine did not come up (see PID 1's log)")
			return nil
		}
	}

	var token string
	if *tokenStdin {
		var err error
		if token, err = connauth.ReadToken(os.Stdin); err != nil {
			return fmt.Errorf("--auth-token-stdin: %w", err)
		}
	}

	var gw netip.Addr
	if *hostGateway != "" {
		var err error
		if gw, err = netip.ParseAddr(*hostGateway); err != nil {
			return fmt.Errorf("--host-gateway-ip: %w", err)
		}
	}
	t0 := time.Now()
	lo := map[string]string{}
	for _, o := range logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return fmt.Errorf("--log-opt %q: want KEY=VALUE", o)
		}
		lo[k] = v
	}
	for _, m := range mirrors {
		if u, err := url.Parse(m); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return fmt.Errorf("--registry-mirror %q: want http(s)://host[:port]", m)
		}
	}
	proxy := httpproxy.Config{HTTPProxy: *httpProxy, HTTPSProxy: *httpsProxy, NoProxy: strings.Join(noProxy, ",")}
	for name, p := range map[string]string{"--http-proxy": proxy.HTTPProxy, "--https-proxy": proxy.HTTPSProxy} {
		if u, err := url.Parse(p); p != "" && (err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5")) {
			return fmt.Errorf("%s %q: want http(s)://host:port", name, p)
		}
	}
	engineSocket := ""
	for _, h := range hosts {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			engineSocket = p
			break
		}
	}
	for i, p := range hostSockets {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("--host-socket-path %q: not an absolute path", p)
		}
		hostSockets[i] = filepath.Clean(p)
	}
	if len(hostSockets) > 0 && engineSocket == "" {
		return fmt.Errorf("--host-socket-path needs a unix:// --host to give containers")
	}
	eng, err := engine.New(ctx, engine.Config{Root: *root, InsecureRegistries: insecure, CgroupParent: *cgroupParent, HostGatewayIP: gw, LogOpts: lo,
		RegistryMirrors: mirrors, Proxy: proxy, DockerHub: *dockerHub, HostSockets: hostSockets, EngineSocket: engineSocket})
	if err != nil {
		return err
	}
	log.Debug("engine opened", "took", time.Since(t0), "init_took", execTime)
	bk := builder.New(builder.Config{Root: filepath.Join(*root, "buildkit"), Binary: *buildkitd,
		CgroupParent: *cgroupParent, InsecureRegistries: insecure, RegistryMirrors: mirrors, Proxy: proxy, MaxUsedSpace: *buildCacheMax,
		LogLevel: *logLevel, Services: builder.NewServices(eng.Images, eng.Networks), Log: log.With("component", "builder")})
	srv := engineapi.New(eng, bk, log)

	var listeners []net.Listener
	for _, h := range hosts {
		l, err := transport.Listen(h)
		if err == nil && token != "" && l.Addr().Network() == "tcp" {
			l, err = connauth.Listen(l, token)
		}
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	log.Info("engine ready", "root", *root, "hosts", hosts.String(), "version", engineapi.Version)

	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, l); err != nil {
				log.Error("serve", "addr", l.Addr(), "err", err)
				stop()
			}
		}()
	}
	<-ctx.Done()
	log.Info("shutting down")
	wg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bk.Close(closeCtx)
	return eng.Close(closeCtx)
}
