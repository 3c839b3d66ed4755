package main

import (
	"os"
	"path/filepath"
	"sync"
)

// The build scenarios: a 3-step Dockerfile (FROM the bench busybox, COPY a
// file, RUN a command) built with the classic builder (DOCKER_BUILDKIT=0;
// buildkit.go has BuildKit's), first with nothing cached (--no-cache),
// then rebuilt unchanged (every step from the cache). Berth and dockerd
// only: podman's compat API builds with buildah, another design.
var (
	buildCtxOnce sync.Once
	buildCtxDir  string
)

func buildContext(b *Bench, ref string) string {
	buildCtxOnce.Do(func() {
		buildCtxDir = b.T.TempDir()
		os.WriteFile(filepath.Join(buildCtxDir, "app.txt"), []byte("hello from the bench\n"), 0o644)
		os.WriteFile(filepath.Join(buildCtxDir, "Dockerfile"), []byte("FROM "+ref+"\nCOPY app.txt /app/\nRUN cp /app/app.txt /app/copy.txt\n"), 0o644)
	})
	return buildCtxDir
}

func init() {
	register(Scenario{
		Section: "Build", Name: "docker build, 3 steps, nothing cached", Unit: "ms", Target: "≤ dockerd",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			e = e.Classic()
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			dir := buildContext(b, ref)
			defer e.Docker.Run(nil, "image", "prune", "-f")
			e.Time(1, "build", "-q", "--no-cache", "-t", "bench-build:first", dir) // warm up, not counted
			return e.Time(b.N, "build", "-q", "--no-cache", "-t", "bench-build:first", dir)
		},
	})
	register(Scenario{
		Section: "Build", Name: "docker build, 3 steps, all cached", Unit: "ms", Target: "≤ 30 ms",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			e = e.Classic()
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			dir := buildContext(b, ref)
			if _, err := e.Time(2, "build", "-q", "-t", "bench-build:cached", dir); err != nil { // fills the cache
				return nil, err
			}
			return e.Time(b.N, "build", "-q", "-t", "bench-build:cached", dir)
		},
	})
}
