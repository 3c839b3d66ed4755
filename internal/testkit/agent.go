package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Agent is a berth-agent engine running natively on this host.
type Agent struct {
	Root   string // --root
	Socket string // path of the API socket
	Host   string // DOCKER_HOST value: unix://…
	Args   []string
	Stdin  string // written to the agent's stdin at each start
	Binary string // the berth-agent executable
	// CgroupParent is the engine's --cgroup-parent, unique per agent.
	CgroupParent string

	t     T
	mu    sync.Mutex // guards cmd
	cmd   *exec.Cmd
	logMu sync.Mutex // guards log
	log   bytes.Buffer
}

// AgentOptions configure StartAgent.
type AgentOptions struct {
	Root  string   // reuse a state root (default: a fresh temp dir)
	Args  []string // extra flags, e.g. --insecure-registry
	Stdin string   // the agent's stdin (e.g. the token of --auth-token-stdin)
	// Binary is the berth-agent to run (default: Binary(t, "berth-agent")),
	// e.g. an earlier build measured side by side.
	Binary string
}

// StartAgent starts bin/berth-agent as root with its own state root, socket
// and cgroup parent, waits until /_ping answers, and stops it at cleanup.
func StartAgent(t T, opts AgentOptions) *Agent {
	t.Helper()
	RequireRoot(t)
	dir, err := os.MkdirTemp("", "berth-agent-")
	if err != nil {
		t.Fatal(err)
	}
	root := opts.Root
	if root == "" {
		root = filepath.Join(dir, "root")
	}
	var id [4]byte
	rand.Read(id[:])
	sock := filepath.Join(dir, "docker.sock")
	a := &Agent{Root: root, Socket: sock, Host: "unix://" + sock, Stdin: opts.Stdin, t: t,
		Args: append([]string{"--root", root, "--host", "unix://" + sock,
			"--cgroup-parent", "/berth-test-" + hex.EncodeToString(id[:]), "--log-level", "debug"}, opts.Args...)}
	a.CgroupParent = "/berth-test-" + hex.EncodeToString(id[:])
	a.Binary = opts.Binary
	a.Start()
	cgroupParent := a.CgroupParent
	t.Cleanup(func() {
		a.Stop()
		RemoveCgroup(cgroupParent)
		if t.Failed() {
			t.Logf("berth-agent log (tail):\n%s", a.LogTail(8000))
		}
		if opts.Root == "" {
			os.RemoveAll(dir)
		}
	})
	return a
}

// Start (re)starts the agent process and waits for it to answer.
func (a *Agent) Start() {
	a.t.Helper()
	bin := a.Binary
	if bin == "" {
		bin = Binary(a.t, "berth-agent")
	}
	cmd := exec.Command(bin, a.Args...)
	cmd.Stdout, cmd.Stderr = syncWriter{&a.logMu, &a.log}, syncWriter{&a.logMu, &a.log}
	if a.Stdin != "" {
		cmd.Stdin = strings.NewReader(a.Stdin)
	}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start berth-agent: %v", err)
	}
	a.mu.Lock()
	a.cmd = cmd
	a.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := waitPing(a.Socket, 20*time.Second, done); err != nil {
		a.t.Fatalf("berth-agent did not come up: %v\n%s", err, a.LogTail(8000))
	}
}

// Stop sends SIGTERM and waits for a clean exit (killing after 30 s).
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd := a.cmd
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
}

// Kill ends the agent with SIGKILL, as a crash would.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd := a.cmd
	a.cmd = nil
	a.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Kill()
		for cmd.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Pid is the agent's process ID (0 when stopped).
func (a *Agent) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// LogTail returns the last n bytes the agent logged.
func (a *Agent) LogTail(n int) string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	b := a.log.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// HTTPClient talks to the agent's socket directly (for raw API tests).
func (a *Agent) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Socket)
	}}}
}

func waitPing(sock string, timeout time.Duration, exited <-chan error) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := c.Get("http://berth/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s after %v", sock, timeout)
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// RemoveCgroup removes the (empty) cgroup at path, e.g. "/berth-test-1a2b",
// and its empty children from every hierarchy, v1 or v2, so test runs leave
// no cgroups behind. Cgroups that still hold processes stay.
func RemoveCgroup(path string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, root := range roots {
		dir := filepath.Join(root, path)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}
