package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// The desktop window (bin/berth-desktop, WebKitGTK under Xvfb) against the
// native engine: time from exec to the page's first paint (the page
// reports it through Wails' IPC), and the memory of the running app.
func init() {
	register(Scenario{
		Section: "Desktop", Name: "window ready (exec → first paint)", Unit: "ms", Target: "≤ 1 s",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return launches(b, e, min(b.N, 10), true, readyMs)
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "CPU time until first paint (window + WebKit's processes; load-independent)", Unit: "ms", Target: "–",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return launches(b, e, min(b.N, 5), true, func(w *window) float64 { return ms(w.cpu) })
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "window ready, first launch (cold caches)", Unit: "ms", Target: "–",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return launches(b, e, min(b.N, 5), false, readyMs)
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "desktop process RSS (berth-desktop)", Unit: "MB", Target: "≤ 150 MB",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return windowRSS(b, e, false)
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "desktop process anonymous memory (RssAnon; the rest is shared libraries)", Unit: "MB", Target: "–",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return settledWindow(b, e, func(pid int) float64 { return statusKB(pid, "RssAnon:") / 1024 })
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "desktop process PSS (shared pages divided among the processes mapping them)", Unit: "MB", Target: "–",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return settledWindow(b, e, func(pid int) float64 { return rollupKB(pid, "Pss:") / 1024 })
		},
	})
	register(Scenario{
		Section: "Desktop", Name: "desktop RSS with WebKit's web and network processes", Unit: "MB", Target: "–",
		Engines: []string{"berth"},
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			return windowRSS(b, e, true)
		},
	})
}

type window struct {
	cmd   *exec.Cmd
	ready time.Duration
	cpu   time.Duration // user+system time of the process tree at first paint
	stop  func()
}

var (
	benchDisplay *testkit.Display
	// benchCache is the XDG cache every warm launch shares (Mesa's shader
	// cache, fontconfig's, WebKit's), as a user's launches after the first do.
	benchCache string
)

func readyMs(w *window) float64 { return ms(w.ready) }

// launches launches the window n times and returns measure of each launch.
// Warm launches share a cache folder, filled by one launch first that is
// not counted; cold ones each start from an empty one.
func launches(b *Bench, e *Engine, n int, warm bool, measure func(*window) float64) ([]float64, error) {
	if warm && benchCache == "" {
		w, err := launchWindow(b, e, true)
		if err != nil {
			return nil, err
		}
		w.stop()
	}
	var out []float64
	for i := 0; i < n; i++ {
		w, err := launchWindow(b, e, warm)
		if err != nil {
			return nil, err
		}
		out = append(out, measure(w))
		w.stop()
	}
	return out, nil
}

// launchWindow starts berth-desktop and waits for its first paint; warm
// launches use the shared cache folder.
func launchWindow(b *Bench, e *Engine, warm bool) (*window, error) {
	if benchDisplay == nil {
		d, err := testkit.StartXvfb(b.T)
		if err != nil {
			return nil, err
		}
		benchDisplay = d
	}
	bin := testkit.Binary(b.T, "berth-desktop")
	home := b.T.TempDir()
	ready := filepath.Join(home, "ready")
	cache := filepath.Join(home, "cache")
	if warm {
		if benchCache == "" {
			benchCache = b.T.TempDir()
		}
		cache = benchCache
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "DISPLAY="+benchDisplay.Name, "DOCKER_HOST="+e.Host, "BERTH_HOME="+home,
		"BERTH_DESKTOP_READY_FILE="+ready, "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+cache, "XDG_DATA_HOME="+filepath.Join(home, "data"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	w := &window{cmd: cmd, stop: func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
	}}
	for {
		if _, err := os.Stat(ready); err == nil {
			w.ready = time.Since(start)
			pid := cmd.Process.Pid
			for _, p := range processTree(pid) {
				w.cpu += cpuTime(p)
			}
			return w, nil
		}
		if time.Since(start) > 60*time.Second {
			w.stop()
			return nil, fmt.Errorf("berth-desktop did not paint within 60s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// windowRSS measures one running window, 3 s after its first paint.
func windowRSS(b *Bench, e *Engine, withHelpers bool) ([]float64, error) {
	return settledWindow(b, e, func(pid int) float64 {
		pids := []int{pid}
		if withHelpers {
			pids = processTree(pid)
		}
		return RSS(pids)
	})
}

// settledWindow launches a window and takes measure of its process 3 s
// after the first paint.
func settledWindow(b *Bench, e *Engine, measure func(pid int) float64) ([]float64, error) {
	w, err := launchWindow(b, e, true)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	time.Sleep(3 * time.Second)
	return []float64{measure(w.cmd.Process.Pid)}, nil
}

// statusKB reads one kB field of /proc/PID/status.
func statusKB(pid int, field string) float64 { return procKB(pid, "status", field) }

// rollupKB reads one kB field of /proc/PID/smaps_rollup.
func rollupKB(pid int, field string) float64 { return procKB(pid, "smaps_rollup", field) }

func procKB(pid int, file, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(n)
		}
	}
	return 0
}

// cpuTime is a process's user+system time so far (/proc/PID/stat).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat (utime, stime), in clock ticks of 1/100 s.
	u, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(u+st) * 10 * time.Millisecond
}
