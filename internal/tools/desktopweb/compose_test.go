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

	"github.com/berth-dev/berth/internal/testkit"
)

// TestBrowserCompose: a project started with the real `docker compose up`
// shows in the Containers view as one group, which the page stops, starts
// and deletes whole (containers and networks, as docker compose down);
// the docker CLI confirms each.
func TestBrowserCompose(t *testing.T) {
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

	d := testkit.NewDocker(t, paths.DockerHost())
	testkit.InstallPlugins(t, d.ConfigDir, "compose")
	dir := t.TempDir()
	compose := filepath.Join(dir, "compose.yaml")
	os.WriteFile(compose, []byte("name: shop\nservices:\n"+
		"  web:\n    image: "+image+"\n    command: [\"sleep\", \"600\"]\n"+
		"  worker:\n    image: "+image+"\n    command: [\"sleep\", \"600\"]\n"), 0o644)
	d.Must("compose", "-f", compose, "up", "-d")
	d.Must("run", "-d", "--name", "solo", image, "sleep", "600")
	if out := d.Must("network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "shop_default") {
		t.Fatalf("compose made no network:\n%s", out)
	}

	s, err := start(dist, "", paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	shots := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/compose.mjs")
	cmd.Dir = filepath.Join(root, "frontend")
	cmd.Env = append(os.Environ(), "BASE_URL="+s.URL, "PROJECT=shop", "SOLO=solo", "SHOTS="+shots)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("compose flow output:\n%s", out.String())
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(shots, "failure.png")); rerr == nil {
			os.WriteFile(filepath.Join(os.TempDir(), "berth-compose-failure.png"), b, 0o644)
		}
		t.Fatalf("compose flow failed: %v", err)
	}

	// What the page did, as the engine sees it.
	if ps := d.Must("ps", "-a", "--format", "{{.Names}}"); strings.Contains(ps, "shop-") || !strings.Contains(ps, "solo") {
		t.Errorf("after the page deleted the project:\n%s", ps)
	}
	if nets := d.Must("network", "ls", "--format", "{{.Name}}"); strings.Contains(nets, "shop_default") {
		t.Errorf("the project's network is left:\n%s", nets)
	}
	if os.Getenv("BERTH_UPDATE_SCREENSHOTS") != "" {
		if b, err := os.ReadFile(filepath.Join(shots, "compose.png")); err == nil {
			os.WriteFile(filepath.Join(root, "docs", "screenshots", "compose.png"), b, 0o644)
		}
	}
}
