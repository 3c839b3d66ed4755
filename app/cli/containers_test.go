package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// berthIO runs the CLI in-process with stdin, and maps errors to exit codes
// as Main does (ExitError's code and message, 1 otherwise).
func berthIO(t *testing.T, host string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	cfg := t.TempDir()
	env := &Env{Stdin: stdin, Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "DOCKER_HOST":
			return host
		case "DOCKER_CONFIG":
			return cfg
		}
		return ""
	}}
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	var ee ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
		if ee.Message != "" {
			errb.WriteString(ee.Message + "\n")
		}
	case err != nil:
		code = 1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func TestContainerCommands(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/tools/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	h := a.Host

	// run pulls on first use, passes output and the exit code through.
	out, errs, code := berthIO(t, h, nil, "run", "--rm", "-e", "WHO=berth", "-w", "/tmp", "-u", "user", ref, "sh", "-c", "echo $WHO $PWD $(id -u); echo warn >&2; exit 3")
	if code != 3 || out != "berth /tmp 1000\n" || !strings.Contains(errs, "warn\n") || !strings.Contains(errs, "Unable to find image '"+ref+"' locally") {
		t.Fatalf("run: code %d out %q err %q", code, out, errs)
	}
	if out, errs, code = berthIO(t, h, strings.NewReader("piped\n"), "run", "--rm", "-i", ref, "cat"); code != 0 || out != "piped\n" {
		t.Fatalf("run -i: %d %q %q", code, out, errs)
	}
	if _, errs, code = berthIO(t, h, nil, "run", "--rm", ref, "/nope"); code != 127 || !strings.Contains(errs, "no such file or directory") {
		t.Fatalf("run of a missing command: %d %q", code, errs)
	}
	if _, errs, code = berthIO(t, h, nil, "run", "-m", "32m", "--name", "hog", ref, "tail", "/dev/zero"); code != 137 {
		t.Fatalf("run -m 32m hog: %d %q", code, errs)
	}

	// -d prints the ID; logs, exec, ps, stop and rm work on it.
	out, errs, code = berthIO(t, h, nil, "run", "-d", "--name", "svc", "--restart", "on-failure:3", "--cpus", "0.5", "--pids-limit", "50",
		ref, "sh", "-c", "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done")
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("run -d: %d %q %q", code, out, errs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, _, _ = berthIO(t, h, nil, "logs", "svc"); out == "up\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _, code = berthIO(t, h, nil, "exec", "-e", "X=1", "svc", "sh", "-c", "echo x=$X; exit 4"); code != 4 || out != "x=1\n" {
		t.Fatalf("exec: %d %q", code, out)
	}
	out, _, _ = berthIO(t, h, nil, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	if out != "svc running\nhog exited\n" {
		t.Fatalf("ps -a --format: %q", out)
	}
	out, _, _ = berthIO(t, h, nil, "ps")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID   IMAGE") || !strings.Contains(lines[1], `"sh -c 'trap 'exit…"`) && !strings.Contains(lines[1], "svc") {
		t.Fatalf("ps table: %q", out)
	}
	if out, _, _ = berthIO(t, h, nil, "ps", "-q"); len(strings.TrimSpace(out)) != 12 {
		t.Fatalf("ps -q: %q", out)
	}
	if out, errs, code = berthIO(t, h, nil, "stop", "-t", "5", "svc"); code != 0 || out != "svc\n" {
		t.Fatalf("stop: %d %q %q", code, out, errs)
	}
	if _, errs, code = berthIO(t, h, nil, "rm", "svc", "nosuch"); code != 1 || !strings.Contains(errs, "No such container: nosuch") {
		t.Fatalf("rm with one missing: %d %q", code, errs)
	}
	if out, _, _ = berthIO(t, h, nil, "ps", "-aq", "--filter", "name=svc"); out != "" {
		t.Fatalf("svc still listed: %q", out)
	}
	if out, _, code = berthIO(t, h, nil, "rm", "-f", "hog"); code != 0 || out != "hog\n" {
		t.Fatalf("rm -f: %d %q", code, out)
	}
}
