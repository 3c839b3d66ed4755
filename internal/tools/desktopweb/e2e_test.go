package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent"
	"github.com/berth-dev/berth/internal/testkit"
)

// TestBrowserFlow drives the desktop frontend in Debian's chromium
// (Playwright) with the real services behind it, against the real host
// agent (`berth start`, native driver: the engine without a VM) and a real
// registry: pull, build, run, list, logs, stats, terminal, stop,
// volumes, delete, and every view. The docker CLI then confirms what the page claimed.
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
	paths := startHostd(t)
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	image := reg.Addr + "/e2e/busybox:1"
	testkit.Push(t, image, testkit.BusyboxImage(t))

	// A folder to build from; its RUN step pauses between two lines so the
	// page can show output arriving while the build runs.
	buildDir := t.TempDir()
	os.WriteFile(filepath.Join(buildDir, "Dockerfile"), []byte("FROM "+image+"\n"+
		"COPY greet.sh /greet.sh\n"+
		"RUN echo compiling && sleep 2 && echo linked-$((6*7))\n"+
		"CMD [\"sh\", \"/greet.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(buildDir, "greet.sh"), []byte("echo built by the window\n"), 0o644)

	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the settings save may write an autostart entry
	s, err := start(dist, "", paths, nil)
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
	cmd.Env = append(os.Environ(), "BASE_URL="+s.URL, "IMAGE="+image, "BUILD_DIR="+buildDir, "SHOTS="+shots)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("flow output:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser flow failed: %v (screenshot of the failure: %s/failure.png)", err, shots)
	}

	// The engine agrees with what the page showed: the container ran, said
	// hello, and is gone after the bulk delete; the settings were saved.
	d := testkit.NewDocker(t, paths.DockerHost())
	if ps := d.Must("ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "e2e-web") {
		t.Fatalf("e2e-web still exists after the bulk delete:\n%s", ps)
	}
	if imgs := d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, image) {
		t.Fatalf("pulled image missing:\n%s", imgs)
	}
	if out := d.Must("run", "--rm", "e2e/built:1"); out != "built by the window\n" {
		t.Fatalf("the image built in the page says %q", out)
	}
	vols := d.Must("volume", "ls", "--format", "{{.Name}}")
	if !strings.Contains(vols, "e2e-data\n") || !strings.Contains(vols, "e2e-scratch\n") || strings.Contains(vols, "e2e-gone") {
		t.Fatalf("volumes after the page made two and deleted one:\n%s", vols)
	}
	saved, err := config.Load(paths)
	if err != nil || saved.CPUs != 1 || len(saved.RegistryMirrors) != 1 || saved.HTTPProxy != "http://proxy.example:3128" || saved.NoProxy != "localhost,.example" {
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

// startHostd runs `berth start` for a fresh home whose machine uses the
// native driver, as a user's would (hostd detached, the engine's socket
// forwarded), and `berth stop` at the end.
func startHostd(t *testing.T) config.Paths {
	testkit.RequireRoot(t)
	berth := testkit.Binary(t, "berth")
	paths := testkit.NativeHome(t)
	home := paths.Home
	t.Setenv("DOCKER_HOST", "")
	env := append(os.Environ(), "BERTH_HOME="+home, "BERTH_AGENT="+testkit.Binary(t, "berth-agent"), "DOCKER_CONFIG="+t.TempDir())
	run := func(args ...string) error {
		cmd := exec.Command(berth, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if err := run("stop", "-f"); err != nil {
			t.Error(err)
		}
		testkit.RemoveCgroup("/berth-" + hostagent.MachineName(paths))
		os.RemoveAll(home)
	})
	if err := run("start"); err != nil {
		t.Fatal(err)
	}
	return paths
}
