package testkit

import (
	"bufio"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/xwd"
)

// Display is an Xvfb X server (1280×800) whose screen can be read back.
type Display struct {
	Name string // DISPLAY value, ":N"
	fb   string // Xvfb's XWD framebuffer file (-fbdir)
}

// StartXvfb starts Xvfb on a free display for the life of t. It returns an
// error (for the caller to skip on) when Xvfb is not installed.
func StartXvfb(t T) (*Display, error) {
	t.Helper()
	if _, err := exec.LookPath("Xvfb"); err != nil {
		return nil, fmt.Errorf("needs Xvfb (apt-get install xvfb): %w", err)
	}
	fbdir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// -displayfd picks a free display and writes its number to fd 3.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-fbdir", fbdir, "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("start Xvfb: %w", err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("Xvfb did not report its display: %w", err)
	}
	return &Display{Name: ":" + strings.TrimSpace(line), fb: filepath.Join(fbdir, "Xvfb_screen0")}, nil
}

// Screenshot reads the screen as it is now.
func (d *Display) Screenshot() (image.Image, error) {
	f, err := os.Open(d.fb)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return xwd.Decode(f)
}
