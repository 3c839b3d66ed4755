package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/testkit"
)

// The container scenarios: `docker run --rm busybox true` end to end and
// `docker exec ID true`, with the busybox test image pushed once to the
// shared registry and pulled into each engine before timing.
var (
	busyboxOnce sync.Once
	busyboxRef  string
)

func busybox(b *Bench, e *Engine) (string, error) {
	busyboxOnce.Do(func() {
		busyboxRef = b.Registry + "/bench/busybox:latest"
		testkit.Push(b.T, busyboxRef, testkit.BusyboxImage(b.T))
	})
	if r := e.Docker.Run(nil, "pull", "-q", busyboxRef); r.Code != 0 {
		return "", fmt.Errorf("pull: %s", strings.TrimSpace(r.Stderr))
	}
	return busyboxRef, nil
}

func init() {
	register(Scenario{
		Section: "Engine", Name: "docker run --rm busybox true", Unit: "ms", Target: "≤ 100 ms",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			args := append(append([]string{"run", "--rm"}, runFlags[e.Name]...), ref, "true")
			e.Time(2, args...) // warm caches, not counted
			return e.Time(b.N, args...)
		},
	})
	register(Scenario{
		Section: "Engine", Name: "docker exec ID true", Unit: "ms", Target: "≤ 40 ms",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			r := e.Docker.Run(nil, append(append([]string{"run", "-d"}, runFlags[e.Name]...), ref, "sleep", "3600")...)
			if r.Code != 0 {
				return nil, fmt.Errorf("run -d: %s", strings.TrimSpace(r.Stderr))
			}
			id := strings.TrimSpace(r.Stdout)
			defer e.Docker.Run(nil, "rm", "-f", id)
			e.Time(2, "exec", id, "true")
			return e.Time(b.N, "exec", id, "true")
		},
	})
}
