//go:build linux

// Package builder is the engine's side of its BuildKit builder, a process
// of its own (berth-buildkitd): started on the first request that needs
// it, handed the connections of POST /grpc and /session, and served the
// private API it calls back (local images, imports, network namespaces;
// see runtime/buildkit/link). BuildKit's code never enters the engine:
// the engine stays small while idle, every container's init (the engine
// binary re-executed) starts as fast as before, and a builder that
// crashes takes no container with it; the next request starts a new one.
package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// Config configures the builder process.
type Config struct {
	Root         string // its state, ROOT/buildkit
	Binary       string // berth-buildkitd
	CgroupParent string // the engine's; steps run in CGROUP_PARENT/buildkit/<id>
	// InsecureRegistries are passed on: the builder pulls and pushes with
	// the engine's registry rules.
	InsecureRegistries []string
	// RegistryMirrors and Proxy are the engine's, passed on so builds
	// pull as the engine does.
	RegistryMirrors []string
	Proxy           httpproxy.Config
	MaxUsedSpace    int64 // build cache bound (0: BuildKit's default)
	LogLevel        string
	Services        Services
	Log             *slog.Logger
	// StartTimeout bounds a start (default 60 s: under emulation the Go
	// runtime alone takes a second).
	StartTimeout time.Duration
}

// Builder supervises the builder process.
type Builder struct {
	cfg     Config
	runDir  string
	sock    string // the builder's: /grpc, /session, admin
	engSock string // the engine's private API for the builder

	mu      sync.Mutex
	proc    *process
	private *http.Server // serves engSock while a builder may run
	closed  bool
}

// process is one run of berth-buildkitd.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // why it exited, once exited is closed
	tail   *tailBuffer
}

// New prepares the builder; nothing starts until the first Dial.
func New(cfg Config) *Builder {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	run := filepath.Join(cfg.Root, "run")
	return &Builder{cfg: cfg, runDir: run, sock: filepath.Join(run, "buildkitd.sock"), engSock: filepath.Join(run, "engine.sock")}
}

// DefaultBinary is berth-buildkitd next to the running engine binary.
func DefaultBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return "berth-buildkitd"
	}
	return filepath.Join(filepath.Dir(exe), "berth-buildkitd")
}

// Available reports why BuildKit cannot be offered (nil when it can).
func (b *Builder) Available() error {
	st, err := os.Stat(b.cfg.Binary)
	if err != nil {
		return fmt.Errorf("BuildKit builder not installed: %w", err)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("BuildKit builder %s is not executable", b.cfg.Binary)
	}
	return nil
}

// HasState reports whether a builder ever ran on this root (so there may
// be a build cache to report or prune).
func (b *Builder) HasState() bool {
	_, err := os.Stat(filepath.Join(b.cfg.Root, "cache.db"))
	return err == nil
}

// Running reports whether a builder process is up now.
func (b *Builder) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc != nil && !isClosed(b.proc.exited)
}

// Dial connects to the builder, starting it first if it is not running.
func (b *Builder) Dial(ctx context.Context) (net.Conn, error) {
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", b.sock)
}

// ensure starts the builder unless one is running. Concurrent callers
// share one start.
func (b *Builder) ensure(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("the engine is shutting down")
	}
	if b.proc != nil && !isClosed(b.proc.exited) {
		return nil
	}
	if err := b.Available(); err != nil {
		return err
	}
	if err := os.MkdirAll(b.runDir, 0o700); err != nil {
		return err
	}
	if b.private == nil {
		if err := b.servePrivate(); err != nil {
			return err
		}
	}
	p, err := b.start()
	if err != nil {
		return err
	}
	b.proc = p
	deadline := time.Now().Add(b.cfg.StartTimeout)
	for {
		if b.ping(ctx) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("BuildKit builder exited at start: %v: %s", p.err, p.tail.String())
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			return fmt.Errorf("BuildKit builder did not answer within %s: %s", b.cfg.StartTimeout, p.tail.String())
		}
	}
}

// start launches berth-buildkitd. It runs on a thread of its own that lives
// as long as the builder: the parent-death signal fires when the thread
// that started the child exits, and libcontainer ends threads it has moved
// into a container's namespaces.
func (b *Builder) start() (*process, error) {
	args := []string{"--root", b.cfg.Root, "--engine", b.engSock, "--listen", b.sock,
		"--cgroup-parent", b.cfg.CgroupParent, "--log-level", b.cfg.LogLevel,
		"--max-used-space", strconv.FormatInt(b.cfg.MaxUsedSpace, 10)}
	if gw := b.cfg.Services.HostGateway(); gw != "" {
		args = append(args, "--host-gateway-ip", gw)
	}
	for _, r := range b.cfg.InsecureRegistries {
		args = append(args, "--insecure-registry", r)
	}
	for _, m := range b.cfg.RegistryMirrors {
		args = append(args, "--registry-mirror", m)
	}

	p := &process{exited: make(chan struct{}), tail: &tailBuffer{max: 4096}}
	p.cmd = exec.Command(b.cfg.Binary, args...)
	p.cmd.Env = proxyEnv(os.Environ(), b.cfg.Proxy)
	p.cmd.Stdout = io.MultiWriter(os.Stderr, p.tail)
	p.cmd.Stderr = p.cmd.Stdout
	// SIGTERM on the engine's death: the builder stops its steps cleanly.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		close(p.exited)
		b.cfg.Log.Info("BuildKit builder exited", "pid", p.cmd.Process.Pid, "status", p.err)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start BuildKit builder: %w", err)
	}
	b.cfg.Log.Info("BuildKit builder started", "pid", p.cmd.Process.Pid)
	return p, nil
}

func (b *Builder) ping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := b.do(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// do makes a request to the builder's own admin API.
func (b *Builder) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://buildkitd"+path, r)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", b.sock)
		}}}
	return hc.Do(req)
}

// DiskUsage lists the build cache. A builder that is not running is
// started only if it ever ran on this root.
func (b *Builder) DiskUsage(ctx context.Context) (link.DiskUsage, error) {
	var du link.DiskUsage
	if !b.HasState() {
		return du, nil
	}
	err := b.admin(ctx, http.MethodGet, link.PathDiskUsage, nil, &du)
	return du, err
}

// Prune removes build cache as req says.
func (b *Builder) Prune(ctx context.Context, req link.PruneRequest) (link.PruneReport, error) {
	var rep link.PruneReport
	if !b.HasState() {
		return rep, nil
	}
	err := b.admin(ctx, http.MethodPost, link.PathPrune, req, &rep)
	return rep, err
}

func (b *Builder) admin(ctx context.Context, method, path string, in, out any) error {
	if err := b.ensure(ctx); err != nil {
		return err
	}
	resp, err := b.do(ctx, method, path, in)
	if err != nil {
		return fmt.Errorf("BuildKit builder: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e link.Error
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return fmt.Errorf("BuildKit builder: %s", e.Message)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Close stops the builder (SIGTERM, then SIGKILL after ctx ends) and the
// private API.
func (b *Builder) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	p := b.proc
	priv := b.private
	b.mu.Unlock()
	if p != nil && !isClosed(p.exited) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-ctx.Done():
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if priv != nil {
		priv.Close()
	}
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// tailBuffer keeps the last max bytes written, for start errors.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// proxyEnv is env with the proxy variables set to cfg's, and only those:
// BuildKit's registry, git and http clients take their proxy from the
// environment (not argv: a proxy URL may carry a password).
func proxyEnv(env []string, cfg httpproxy.Config) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		out = append(out, kv)
	}
	for k, v := range map[string]string{"HTTP_PROXY": cfg.HTTPProxy, "HTTPS_PROXY": cfg.HTTPSProxy, "NO_PROXY": cfg.NoProxy} {
		if v != "" {
			out = append(out, k+"="+v, strings.ToLower(k)+"="+v)
		}
	}
	return out
}
