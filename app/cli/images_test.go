package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// berth runs the CLI in-process against host and returns stdout, stderr and
// the exit code.
func berth(t *testing.T, host string, args ...string) (string, string, int) {
	t.Helper()
	return berthEnv(t, host, nil, args...)
}

// berthEnv is berth with more environment variables set.
func berthEnv(t *testing.T, host string, vars map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "DOCKER_HOST":
			return host
		case "DOCKER_CONFIG":
			return t.TempDir()
		}
		return vars[k]
	}}
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestPullAndImages(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/tools/busybox"
	testkit.Push(t, ref+":latest", testkit.BusyboxImage(t))

	out, errs, code := berth(t, a.Host, "pull", ref)
	if code != 0 {
		t.Fatalf("berth pull: %s", errs)
	}
	for _, want := range []string{"Using default tag: latest", "latest: Pulling from tools/busybox", "Pull complete",
		"Status: Downloaded newer image for " + ref + ":latest", "\n" + ref + ":latest\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("berth pull output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = berth(t, a.Host, "pull", "-q", ref+":latest")
	if out != ref+":latest\n" {
		t.Fatalf("berth pull -q: %q", out)
	}

	out, errs, code = berth(t, a.Host, "images")
	if code != 0 {
		t.Fatalf("berth images: %s", errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.Contains(lines[0], "IMAGE ID") {
		t.Fatalf("berth images:\n%s", out)
	}
	fields := strings.Fields(lines[1])
	if fields[0] != ref || fields[1] != "latest" || len(fields[2]) != 12 || !strings.HasSuffix(lines[1], "MB") {
		t.Fatalf("berth images row: %q", lines[1])
	}
	// The same answer as the stock docker CLI gives.
	d := testkit.NewDocker(t, a.Host)
	want := d.Must("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}")
	got, _, _ := berth(t, a.Host, "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}")
	if got != want {
		t.Fatalf("berth images --format: %q, docker: %q", got, want)
	}
	got, _, _ = berth(t, a.Host, "images", "-q", "--no-trunc")
	if want := d.Must("images", "-q", "--no-trunc"); got != want {
		t.Fatalf("berth images -q --no-trunc: %q, docker: %q", got, want)
	}
	got, _, _ = berth(t, a.Host, "images", "nosuch/*")
	if strings.Count(got, "\n") != 1 {
		t.Fatalf("berth images with a non-matching reference: %q", got)
	}
	got, _, _ = berth(t, a.Host, "images", "--digests", "--format", "table {{.Repository}}\t{{.Digest}}")
	if !strings.HasPrefix(got, "REPOSITORY") || !strings.Contains(got, "sha256:") {
		t.Fatalf("berth images --digests table: %q", got)
	}

	_, errs, code = berth(t, a.Host, "pull", reg.Addr+"/tools/nosuch:1")
	if code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("berth pull of a missing image: %d %q", code, errs)
	}
}
