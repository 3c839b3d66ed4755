package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The BuildKit scenarios: `docker build` as the docker CLI with the buildx
// plugin runs it (no DOCKER_BUILDKIT), Berth against dockerd's own BuildKit
// with the same plugin. The engine's idle RSS before the first BuildKit
// build comes first; each figure's setup pulls the bench busybox.

// bkContext writes a BuildKit bench context (BASE: the base image).
func bkContext(b *Bench, name, ref string, files map[string]string) string {
	dir := filepath.Join(b.T.TempDir(), name)
	for n, body := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.ReplaceAll(body, "BASE", ref)), 0o755)
	}
	return dir
}

var bkHello = map[string]string{
	"helloworld": "#!/bin/sh\necho Hello, World!\n",
	"Dockerfile": "FROM BASE\nCOPY helloworld /usr/local/bin/\nRUN chmod +x /usr/local/bin/helloworld\nCMD [\"helloworld\"]\n",
}

var bkMultiStage = map[string]string{
	"src/main.sh": "echo built from source\n",
	"Dockerfile": "FROM BASE AS build\nCOPY src /src\nRUN mkdir /out && cp /src/main.sh /out/app && chmod +x /out/app\n" +
		"FROM BASE AS docs\nRUN echo docs > /README\n" +
		"FROM BASE\nCOPY --from=build /out/app /usr/local/bin/app\nCOPY --from=docs /README /\nCMD [\"app\"]\n",
}

var bkCacheMount = map[string]string{
	"app.txt": "version 0\n",
	"Dockerfile": "FROM BASE\nCOPY app.txt /src/\n" +
		"RUN --mount=type=cache,target=/cache cp /src/app.txt /cache/ && wc -c /cache/app.txt > /built\n",
}

func init() {
	register(Scenario{
		Section: "BuildKit", Name: "engine idle RSS before the first BuildKit build", Unit: "MB", Target: "≤ 40 MB",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			time.Sleep(2 * time.Second)
			return []float64{RSS(e.tree())}, nil
		},
	})
	first := func(name string, files map[string]string) Scenario {
		return Scenario{
			Section: "BuildKit", Name: "first build, " + name + " (--no-cache)", Unit: "ms", Target: "≤ dockerd",
			Engines: []string{"berth", "dockerd"},
			Run: func(b *Bench, e *Engine) ([]float64, error) {
				ref, err := busybox(b, e)
				if err != nil {
					return nil, err
				}
				dir := bkContext(b, "first-"+strings.Fields(name)[0], ref, files)
				e.Time(1, "build", "-q", "--no-cache", "-t", "bk-first", dir) // warm up, not counted
				return e.Time(b.N, "build", "-q", "--no-cache", "-t", "bk-first", dir)
			},
		}
	}
	register(first("helloworld", bkHello))
	register(first("multi-stage", bkMultiStage))
	register(Scenario{
		Section: "BuildKit", Name: "engine RSS after the first BuildKit build (with its builder)", Unit: "MB", Target: "report",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			time.Sleep(2 * time.Second)
			return []float64{RSS(e.tree())}, nil
		},
	})
	register(Scenario{
		Section: "BuildKit", Name: "cached rebuild, nothing changed (helloworld)", Unit: "ms", Target: "≤ 0.5 × dockerd",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			dir := bkContext(b, "cached", ref, bkHello)
			if _, err := e.Time(2, "build", "-q", "-t", "bk-cached", dir); err != nil {
				return nil, err
			}
			return e.Time(b.N, "build", "-q", "-t", "bk-cached", dir)
		},
	})
	register(Scenario{
		Section: "BuildKit", Name: "rebuild after one source file changed, with a cache mount", Unit: "ms", Target: "≤ dockerd",
		Engines: []string{"berth", "dockerd"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			ref, err := busybox(b, e)
			if err != nil {
				return nil, err
			}
			dir := bkContext(b, "mount", ref, bkCacheMount)
			if _, err := e.Time(1, "build", "-q", "-t", "bk-mount", dir); err != nil {
				return nil, err
			}
			var out []float64
			for i := 0; i < b.N; i++ {
				os.WriteFile(filepath.Join(dir, "app.txt"), []byte(fmt.Sprintf("version %d\n", i+1)), 0o644)
				s, err := e.Time(1, "build", "-q", "-t", "bk-mount", dir)
				if err != nil {
					return nil, err
				}
				out = append(out, s...)
			}
			return out, nil
		},
	})
	register(Scenario{
		Section: "BuildKit", Name: "berth-agent binary size", Unit: "MB", Target: "report",
		Engines: []string{"berth", "berth@before"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			st, err := os.Stat(filepath.Join(e.Bin, "berth-agent"))
			if err != nil {
				return nil, err
			}
			return []float64{float64(st.Size()) / 1e6}, nil
		},
	})
	register(Scenario{
		Section: "BuildKit", Name: "berth-agent package initialisers (each container's init runs them)", Unit: "ms", Target: "no regression",
		Engines: []string{"berth", "berth@before"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			var out []float64
			for i := 0; i < b.N; i++ {
				d, err := initTime(filepath.Join(e.Bin, "berth-agent"))
				if err != nil {
					return nil, err
				}
				out = append(out, d)
			}
			return out, nil
		},
	})
}

// tree is the engine's processes with its helpers.
func (e *Engine) tree() []int {
	if e.Tree != nil {
		return e.Tree()
	}
	return e.Pids()
}

// initTime runs bin with GODEBUG=inittrace=1 and sums its package
// initialisers' wall time in ms (what every container start pays again,
// as the engine binary is each container's init).
func initTime(bin string) (float64, error) {
	cmd := exec.Command(bin, "--version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", bin, err, out)
	}
	total := 0.0
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		// init PKG @T ms, D ms clock, B bytes, N allocs
		if len(f) >= 7 && f[0] == "init" && f[6] == "clock," {
			v, err := strconv.ParseFloat(f[4], 64)
			if err == nil {
				total += v
			}
		}
	}
	return total, nil
}
