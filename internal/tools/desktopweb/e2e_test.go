package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/internal/testkit"
)

// TestBrowserFlow drives the desktop frontend in Debian's chromium
// (Playwright) with the real services behind it, against the real engine
// and a real registry: pull, run, list, logs, terminal, stop, delete, and
// every view. The docker CLI then confirms what the page claimed.
// BERTH_UPDATE_SCREENSHOTS=1 copies the screenshots to docs/screenshots.
func TestBrowserFlow(t *testing.T) {
	root := testkit.RepoRoot()
	dist := filepath.Join(root, "frontend", "dist")
	for _, need := range []string{filepath.Join(dist, "index.html"), filepath.Join(root, "frontend", "node_modules", "playwright-core"), "/usr/bin/chromium"} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("needs %s (make frontend; apt-get install chromium)", need)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node")
	}
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	image := reg.Addr + "/e2e/busybox:1"
	testkit.Push(t, image, testkit.BusyboxImage(t))

	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the settings save may write an autostart entry
	s, err := start(dist, a.Host, config.Paths{Home: home}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	shots, err := os.MkdirTemp("", "berth-e2e-shots-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !t.Failed() { // kept on failure, for failure.png
			os.RemoveAll(shots)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/flow.mjs")
	cmd.Dir = filepath.Join(root, "frontend")
	cmd.Env = append(os.Environ(), "BASE_URL="+s.URL, "IMAGE="+image, "SHOTS="+shots)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("flow output:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser flow failed: %v (screenshot of the failure: %s/failure.png)", err, shots)
	}

	// The engine agrees with what the page showed: the container ran, said
	// hello, and is gone after the bulk delete; the settings were saved.
	d := testkit.NewDocker(t, a.Host)
	if ps := d.Must("ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "e2e-web") {
		t.Fatalf("e2e-web still exists after the bulk delete:\n%s", ps)
	}
	if imgs := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, image) {
		t.Fatalf("pulled image missing:\n%s", imgs)
	}
	saved, err := config.Load(config.Paths{Home: home})
	if err != nil || saved.CPUs != 1 || len(saved.RegistryMirrors) != 1 {
		t.Fatalf("settings not saved: %+v %v", saved, err)
	}

	if os.Getenv("BERTH_UPDATE_SCREENSHOTS") != "" {
		dst := filepath.Join(root, "docs", "screenshots")
		os.MkdirAll(dst, 0o755)
		files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
			}
		}
	}
}
