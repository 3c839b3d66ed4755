package engine_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/installer/dockercli"
	"github.com/berth-dev/berth/internal/testkit"
)

// TestShippedDockerCLI drives the engine with the docker CLI the installers
// ship (installer/dockercli, built from its module) and its buildx and
// compose plugins: version negotiation, pull, run, build, compose.
func TestShippedDockerCLI(t *testing.T) {
	dir := t.TempDir()
	if err := dockercli.BuildAll(dockercli.DefaultCache(), runtime.GOOS, runtime.GOARCH, dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	e := newImageEnv(t)
	cfg := t.TempDir()
	os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o755)
	for _, p := range []string{"docker-buildx", "docker-compose"} {
		os.Symlink(filepath.Join(dir, "cli-plugins", p), filepath.Join(cfg, "cli-plugins", p))
	}
	d := &testkit.Docker{}
	*d = *e.d
	d.ConfigDir = cfg
	docker := func(args ...string) string {
		t.Helper()
		cmd := d.Cmd(t.Context(), args...)
		cmd.Path = filepath.Join(dir, "docker")
		cmd.Args[0] = cmd.Path
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s (%s): %v\n%s", strings.Join(args, " "), dockercli.CLIVersion, err, out)
		}
		return string(out)
	}
	v := docker("version", "--format", "{{.Client.Version}} {{.Server.APIVersion}}")
	if !strings.HasPrefix(v, strings.TrimPrefix(dockercli.CLIVersion, "v")+" ") {
		t.Errorf("docker version: %q", v)
	}
	docker("pull", "-q", e.ref)
	if out := docker("run", "--rm", e.ref, "echo", "hello from the shipped CLI"); out != "hello from the shipped CLI\n" {
		t.Errorf("docker run: %q", out)
	}
	bdir := t.TempDir()
	os.WriteFile(filepath.Join(bdir, "Dockerfile"), []byte("FROM "+e.ref+"\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n"), 0o644)
	docker("build", "-t", "shipped-built", bdir)
	if out := docker("run", "--rm", "shipped-built"); out != "built\n" {
		t.Errorf("built with buildx %s: %q", dockercli.BuildxVersion, out)
	}
	os.WriteFile(filepath.Join(bdir, "compose.yaml"), []byte("services:\n  app:\n    image: shipped-built\n"), 0o644)
	out := docker("compose", "--project-directory", bdir, "-p", "shipped", "run", "--rm", "app")
	if !strings.Contains(out, "built") {
		t.Errorf("compose %s run: %q", dockercli.ComposeVersion, out)
	}
}
