package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// berth build with docker build's flags, against a real agent: tags,
// build args, a Dockerfile outside the context, .dockerignore, -q and
// --iidfile, and a failing RUN's exit code.
func TestBuild(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/tools/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("no\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("secret.txt\n"), 0o644)
	df := filepath.Join(t.TempDir(), "Containerfile")
	os.WriteFile(df, []byte("FROM "+ref+"\nARG WHO\nCOPY . /ctx/\nRUN echo \"$WHO\" > /who\nLABEL from=file\n"), 0o644)

	out, errs, code := berth(t, a.Host, "build", "-t", "app:1", "-t", "app:2", "-f", df, "--build-arg", "WHO=berth", "--label", "x=y", dir)
	if code != 0 {
		t.Fatalf("berth build: %s\n%s", errs, out)
	}
	for _, want := range []string{"Step 1/6 : FROM " + ref, "Step 6/6 : LABEL \"x\"=\"y\"", "Successfully tagged app:1", "Successfully tagged app:2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = berth(t, a.Host, "run", "--rm", "app:2", "sh", "-c", "cat /who; ls -A /ctx")
	if out != "berth\n.dockerignore\nhello.txt\n" {
		t.Fatalf("image content: %q", out)
	}

	iid := filepath.Join(t.TempDir(), "iid")
	out, errs, code = berth(t, a.Host, "build", "-q", "--iidfile", iid, "-f", df, dir)
	got, _ := os.ReadFile(iid)
	if code != 0 || !strings.HasPrefix(out, "sha256:") || strings.TrimSpace(out) != string(got) || strings.Contains(out, "Step") {
		t.Fatalf("-q: %q %q (iid %q)", out, errs, got)
	}

	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nRUN exit 7\n"), 0o644)
	_, errs, code = berth(t, a.Host, "build", dir)
	// The RUN's exit code is the CLI's (ExitError), as with docker build.
	if code != 1 || !strings.Contains(errs, "exit status 7") {
		t.Fatalf("failing build: %d %s", code, errs)
	}
}
