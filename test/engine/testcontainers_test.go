package engine_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tc "github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestTestcontainersGo runs testcontainers-go (the version in go.mod)
// unchanged against the engine: a container started with files copied in
// before start (testcontainers sends those archives gzip-compressed), a
// log wait strategy, exec, a copy in and out while it runs, terminate. Its
// reaper (Ryuk) is an image from Docker Hub, out of reach here: the test
// turns it off as CI setups do and terminates the container itself.
// testcontainers keeps the first DOCKER_HOST it sees for the process, so
// this test runs once per test binary (-count=N fails after the first).
func TestTestcontainersGo(t *testing.T) {
	e := newImageEnv(t)
	t.Setenv("DOCKER_HOST", e.agent.Host)
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	t.Setenv("HOME", t.TempDir()) // no ~/.testcontainers.properties of the machine's
	t.Setenv("DOCKER_CONFIG", e.d.ConfigDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	hostFile := filepath.Join(t.TempDir(), "seed.txt")
	os.WriteFile(hostFile, []byte("seeded from the host\n"), 0o644)
	c, err := tc.GenericContainer(ctx, tc.GenericContainerRequest{
		ContainerRequest: tc.ContainerRequest{
			Image: e.ref,
			Cmd:   []string{"sh", "-c", "cat /etc/app.conf /data/seed.txt; echo ready; sleep 600"},
			Files: []tc.ContainerFile{
				{Reader: strings.NewReader("key=value\n"), ContainerFilePath: "/etc/app.conf", FileMode: 0o644},
				{HostFilePath: hostFile, ContainerFilePath: "/data/seed.txt", FileMode: 0o600},
			},
			WaitingFor: wait.ForLog("ready").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	if err != nil {
		t.Fatalf("testcontainers: %v", err)
	}
	defer func() {
		if err := c.Terminate(context.Background()); err != nil {
			t.Errorf("terminate: %v", err)
		}
	}()
	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(b), "key=value") || !strings.Contains(string(b), "seeded from the host") {
		t.Errorf("the files copied in before start: %q", b)
	}
	if err := c.CopyToContainer(ctx, []byte("later\n"), "/tmp/later.txt", 0o644); err != nil {
		t.Fatalf("copy to a running container: %v", err)
	}
	code, out, err := c.Exec(ctx, []string{"sh", "-c", "cat /tmp/later.txt; stat -c %a /data/seed.txt"}, tcexec.Multiplexed())
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	got, _ := io.ReadAll(out)
	if !strings.Contains(string(got), "later\n600") {
		t.Errorf("exec output: %q", got)
	}
	rc, err := c.CopyFileFromContainer(ctx, "/etc/app.conf")
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(rc)
	rc.Close()
	if string(back) != "key=value\n" {
		t.Errorf("copied back: %q", back)
	}
}
