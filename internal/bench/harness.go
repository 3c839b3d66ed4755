package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// Engine is one engine under measurement, driven with the stock docker CLI.
type Engine struct {
	Name    string // "berth", "dockerd", "podman"
	Version string
	Host    string // DOCKER_HOST
	Docker  *testkit.Docker
	// Pids returns the engine's processes, for RSS figures.
	Pids func() []int
	// Stop shuts it down (also done at exit).
	Stop func()
	// Tree returns the engine's processes with its helpers (Berth's
	// BuildKit builder); nil: Pids.
	Tree func() []int
	// Bin is the directory of a Berth engine's binaries.
	Bin string
}

// beforeBin is -before: an earlier build measured as "berth@before".
var beforeBin string

// Classic is e with `docker build` on the classic builder (DOCKER_BUILDKIT=0).
func (e *Engine) Classic() *Engine {
	c := *e
	d := *e.Docker
	d.Env = append(append([]string(nil), d.Env...), "DOCKER_BUILDKIT=0")
	c.Docker = &d
	return &c
}

// Label is the column heading.
func (e *Engine) Label() string {
	if e.Version == "" {
		return e.Name
	}
	return e.Name + " " + e.Version
}

// Time runs docker args n times and returns each run's wall time in ms.
func (e *Engine) Time(n int, args ...string) ([]float64, error) {
	var out []float64
	for i := 0; i < n; i++ {
		start := time.Now()
		r := e.Docker.Run(nil, args...)
		d := time.Since(start)
		if r.Code != 0 {
			return nil, fmt.Errorf("docker %s: exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
		}
		out = append(out, ms(d))
	}
	return out, nil
}

// RSS is the summed resident set of pids in MB.
func RSS(pids []int) float64 {
	var kb int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				var v int
				fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &v)
				kb += v
			}
		}
	}
	return float64(kb) / 1024
}

// startEngines starts Berth natively and, when installed, dockerd and podman,
// each with its own state directory, plus one registry they all pull from.
func startEngines(b *Bench) []*Engine {
	b.Registry = testkit.StartRegistry(b.T, testkit.RegistryOptions{}).Addr
	var engines []*Engine
	a := testkit.StartAgent(b.T, testkit.AgentOptions{Args: []string{"--log-level", "info"}})
	engines = append(engines, &Engine{Name: "berth", Host: a.Host, Docker: testkit.NewDocker(b.T, a.Host),
		Pids: func() []int { return []int{a.Pid()} }, Stop: a.Stop, Bin: filepath.Dir(testkit.Binary(b.T, "berth-agent")),
		Tree: func() []int { return processTree(a.Pid()) }})
	if beforeBin != "" {
		old := testkit.StartAgent(b.T, testkit.AgentOptions{Args: []string{"--log-level", "info"},
			Binary: filepath.Join(beforeBin, "berth-agent")})
		engines = append(engines, &Engine{Name: "berth@before", Host: old.Host, Docker: testkit.NewDocker(b.T, old.Host),
			Pids: func() []int { return []int{old.Pid()} }, Stop: old.Stop, Bin: beforeBin})
	}
	for _, start := range extraEngines {
		if e := start(b); e != nil {
			engines = append(engines, e)
		}
	}
	for _, e := range engines {
		if v, err := exec.Command(testkit.DockerCLI, "-H", e.Host, "version", "--format", "{{.Server.Version}}").Output(); err == nil {
			e.Version = strings.TrimSpace(string(v))
		}
	}
	fmt.Fprintf(os.Stderr, "engines: %d on %s/%s, %d CPUs\n", len(engines), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	return engines
}

// extraEngines start other installed engines for comparison; each returns
// nil when its engine is not installed or does not come up.
var extraEngines []func(b *Bench) *Engine
