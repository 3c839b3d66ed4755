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
			var out []float64
			for i := 0; i < min(b.N, 10); i++ {
				w, err := launchWindow(b, e)
				if err != nil {
					return nil, err
				}
				out = append(out, ms(w.ready))
				w.stop()
			}
			return out, nil
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
			w, err := launchWindow(b, e)
			if err != nil {
				return nil, err
			}
			defer w.stop()
			time.Sleep(3 * time.Second)
			return []float64{statusKB(w.cmd.Process.Pid, "RssAnon:") / 1024}, nil
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
	stop  func()
}

var benchDisplay *testkit.Display

// launchWindow starts berth-desktop and waits for its first paint.
func launchWindow(b *Bench, e *Engine) (*window, error) {
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
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "DISPLAY="+benchDisplay.Name, "DOCKER_HOST="+e.Host, "BERTH_HOME="+home,
		"BERTH_DESKTOP_READY_FILE="+ready, "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"), "XDG_DATA_HOME="+filepath.Join(home, "data"),
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
	w, err := launchWindow(b, e)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	time.Sleep(3 * time.Second)
	pids := []int{w.cmd.Process.Pid}
	if withHelpers {
		pids = append(pids, descendants(w.cmd.Process.Pid)...)
	}
	return []float64{RSS(pids)}, nil
}

// statusKB reads one kB field of /proc/PID/status.
func statusKB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
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

// descendants lists the process tree under pid (WebKit's helpers).
func descendants(pid int) []int {
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, …
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
