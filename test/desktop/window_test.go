// Package desktop_test runs the real desktop binary (Wails on WebKitGTK)
// under Xvfb against the native engine and drives it with xdotool.
package desktop_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

func xdotool(t *testing.T, d *testkit.Display, args ...string) string {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xdotool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func screenshot(t *testing.T, d *testkit.Display) image.Image {
	t.Helper()
	img, err := d.Screenshot()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestWindow starts bin/berth-desktop under Xvfb against the native
// engine: the window titled "Berth" paints (the frontend reports its first
// paint through Wails' IPC), its Home shows the first-run card, and a click
// on "Run hello" makes the engine run the bundled hello image.
func TestWindow(t *testing.T) {
	if _, err := exec.LookPath("xdotool"); err != nil {
		t.Skip("needs xdotool (apt-get install xdotool)")
	}
	d, err := testkit.StartXvfb(t)
	if err != nil {
		t.Skip(err)
	}
	bin := testkit.Binary(t, "berth-desktop")
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	docker := testkit.NewDocker(t, a.Host)
	// The real bundled image when `make hello` built it, else busybox in its place.
	hello := filepath.Join(os.Getenv("BERTH_BIN"), "hello.tar")
	realHello := os.Getenv("BERTH_BIN") != ""
	if _, err := os.Stat(hello); err == nil && realHello {
		docker.Must("load", "-i", hello)
	} else {
		realHello = false
		reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
		testkit.Push(t, reg.Addr+"/berth/hello:latest", testkit.BusyboxImage(t))
		docker.Must("pull", reg.Addr+"/berth/hello:latest")
		docker.Must("tag", reg.Addr+"/berth/hello:latest", "berth/hello:latest")
	}

	home := t.TempDir()
	ready := filepath.Join(home, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := exec.CommandContext(ctx, bin)
	app.Env = append(os.Environ(), "DISPLAY="+d.Name, "DOCKER_HOST="+a.Host, "BERTH_HOME="+home,
		"BERTH_DESKTOP_READY_FILE="+ready, "XDG_CONFIG_HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir(),
		"XDG_DATA_HOME="+t.TempDir(), "DBUS_SESSION_BUS_ADDRESS=disabled:")
	var log strings.Builder
	app.Stdout, app.Stderr = &log, &log
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		app.Process.Signal(os.Interrupt)
		cancel()
		app.Wait()
		if t.Failed() {
			t.Logf("berth-desktop output:\n%s", log.String())
		}
	}()

	// First paint, reported by the page itself.
	deadline := time.Now().Add(60 * time.Second)
	var ms int
	for {
		if b, err := os.ReadFile(ready); err == nil {
			ms, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the window never reported its first paint")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("window ready after %d ms", ms)
	// xdotool matches names case-insensitively; GTK's leader window is
	// "berth" (the program name): the top-level must be titled "Berth".
	win := ""
	for _, id := range strings.Fields(xdotool(t, d, "search", "--sync", "--name", "^Berth$")) {
		if xdotool(t, d, "getwindowname", id) == "Berth" {
			win = id
		}
	}
	if win == "" {
		t.Fatal(`no window titled "Berth"`)
	}

	// The page is drawn: the nav's light panel and the accent-blue
	// "Run hello" button of the first-run card are on screen.
	time.Sleep(500 * time.Millisecond) // let the engine's lists arrive
	// The web process paints; the window process draws no GL and must not
	// load a GL driver (Mesa's DRI driver and its libLLVM, 50 MB resident)
	// to find a render node for it (webkit_linux.go).
	if maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", app.Process.Pid)); err != nil {
		t.Fatal(err)
	} else if m := regexp.MustCompile(`\S*(_dri\.so|libgallium|libLLVM)\S*`).Find(maps); m != nil {
		t.Errorf("the window process mapped a GL driver: %s", m)
	}
	geo := xdotool(t, d, "getwindowgeometry", "--shell", win)
	wx, wy := shellInt(geo, "X"), shellInt(geo, "Y")
	shot := screenshot(t, d)
	savePNG(t, shot, filepath.Join(os.TempDir(), "berth-window-test.png"))
	bx, by, ok := findButton(shot, image.Rect(wx+200, wy+200, wx+700, wy+450))
	if !ok {
		t.Fatal("no Run hello button on screen (see " + filepath.Join(os.TempDir(), "berth-window-test.png") + ")")
	}

	// Click it, as a user would.
	xdotool(t, d, "mousemove", strconv.Itoa(bx), strconv.Itoa(by), "click", "1")
	deadline = time.Now().Add(30 * time.Second)
	for {
		out := docker.Must("ps", "-a", "--filter", "ancestor=berth/hello:latest", "--format", "{{.ID}} {{.Image}}")
		if id, _, ok := strings.Cut(out, " berth/hello"); ok {
			if realHello {
				waitLogs(t, docker, strings.TrimSpace(id), "Hello from Berth!")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("clicking Run hello ran no container")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if dir := os.Getenv("BERTH_UPDATE_SCREENSHOTS"); dir != "" {
		time.Sleep(time.Second)
		savePNG(t, screenshot(t, d), filepath.Join(testkit.RepoRoot(), "docs", "screenshots", "window.png"))
	}
}

func waitLogs(t *testing.T, docker *testkit.Docker, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := docker.Run(nil, "logs", id)
		if strings.Contains(r.Stdout, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hello container never said %q; logs:\n%s%s", want, r.Stdout, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findButton looks in r for a block of the accent colour (#1f6feb) the
// size of a button (not a 1 px border of that colour) and returns a point
// inside it.
func findButton(img image.Image, r image.Rectangle) (int, int, bool) {
	accent := color.RGBA{0x1f, 0x6f, 0xeb, 0xff}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		run := 0
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.At(x, y), accent) {
				run++
				if run >= 60 && near(img.At(x-30, y+12), accent) && near(img.At(x-59, y+12), accent) {
					return x - 30, y + 8, true
				}
			} else {
				run = 0
			}
		}
	}
	return 0, 0, false
}

func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, b uint8) int { return int(a>>8) - int(b) }
	abs := func(v int) int {
		if v < 0 {
			return -v
		}
		return v
	}
	return abs(d(r, want.R)) < 12 && abs(d(g, want.G)) < 12 && abs(d(b, want.B)) < 12
}

func shellInt(geo, key string) int {
	for _, l := range strings.Split(geo, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func savePNG(t *testing.T, img image.Image, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	png.Encode(f, img)
}
