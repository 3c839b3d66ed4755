package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DockerCLI is the stock docker client these tests drive.
const DockerCLI = "/usr/local/bin/docker"

// Docker runs the stock docker CLI against one engine, as people install
// it: with the buildx plugin, so `docker build` is BuildKit's.
type Docker struct {
	Host      string // DOCKER_HOST
	ConfigDir string // DOCKER_CONFIG: isolates credentials, contexts and plugins
	Env       []string
	Timeout   time.Duration
	t         T
}

// Result is one docker invocation's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// NewDocker returns a runner for host with the buildx plugin installed in
// its config directory; it skips t when the CLI is missing.
func NewDocker(t T, host string) *Docker {
	t.Helper()
	if _, err := os.Stat(DockerCLI); err != nil {
		t.Skipf("needs the stock docker CLI at %s", DockerCLI)
	}
	d := &Docker{Host: host, ConfigDir: t.TempDir(), Timeout: 3 * time.Minute, t: t}
	InstallPlugins(t, d.ConfigDir, "buildx")
	return d
}

// Classic makes `docker build` use the classic builder (/build, version
// 1), as DOCKER_BUILDKIT=0 does for a user.
func (d *Docker) Classic() *Docker {
	d.Env = append(d.Env, "DOCKER_BUILDKIT=0")
	return d
}

// Cmd prepares a docker command with this runner's environment.
func (d *Docker) Cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, DockerCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+d.ConfigDir, "DOCKER_CLI_HINTS=false")
	cmd.Env = append(cmd.Env, d.Env...)
	return cmd
}

// Run runs docker with args and stdin (may be nil).
func (d *Docker) Run(stdin io.Reader, args ...string) Result {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d.Timeout)
	defer cancel()
	cmd := d.Cmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		d.t.Fatalf("docker %s: timed out after %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), d.Timeout, res.Stdout, res.Stderr)
	}
	return res
}

// Must runs docker and fails the test unless it exits 0; returns stdout.
func (d *Docker) Must(args ...string) string {
	d.t.Helper()
	r := d.Run(nil, args...)
	if r.Code != 0 {
		d.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Fail runs docker, expects a non-zero exit, and returns stderr.
func (d *Docker) Fail(args ...string) string {
	d.t.Helper()
	r := d.Run(nil, args...)
	if r.Code == 0 {
		d.t.Fatalf("docker %s: succeeded, expected failure\nstdout: %s", strings.Join(args, " "), r.Stdout)
	}
	return r.Stderr
}
