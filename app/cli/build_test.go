package cli

import (
	"encoding/json"
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
	// BuildKit's plain progress, on stderr as docker build shows it.
	for _, want := range []string{"[1/3] FROM " + ref, `RUN echo "berth" > /who`, "naming to docker.io/library/app:1 done",
		"naming to docker.io/library/app:2 done"} {
		if !strings.Contains(errs, want) {
			t.Fatalf("progress lacks %q:\n%s", want, errs)
		}
	}
	out, _, _ = berth(t, a.Host, "run", "--rm", "app:2", "sh", "-c", "cat /who; ls -A /ctx")
	if out != "berth\n.dockerignore\nhello.txt\n" {
		t.Fatalf("image content: %q", out)
	}
	resp, err := a.HTTPClient().Get("http://berth/images/app:1/json")
	if err != nil {
		t.Fatal(err)
	}
	var img struct {
		Config struct{ Labels map[string]string }
	}
	json.NewDecoder(resp.Body).Decode(&img)
	resp.Body.Close()
	if l := img.Config.Labels; l["x"] != "y" || l["from"] != "file" {
		t.Fatalf("labels: %v", l)
	}

	iid := filepath.Join(t.TempDir(), "iid")
	out, errs, code = berth(t, a.Host, "build", "-q", "--iidfile", iid, "-f", df, dir)
	got, _ := os.ReadFile(iid)
	if code != 0 || !strings.HasPrefix(out, "sha256:") || strings.TrimSpace(out) != string(got) || strings.Contains(errs, "#1 ") {
		t.Fatalf("-q: %q %q (iid %q)", out, errs, got)
	}

	// DOCKER_BUILDKIT=0: the classic builder.
	out, errs, code = berthEnv(t, a.Host, map[string]string{"DOCKER_BUILDKIT": "0"}, "build", "-t", "app:classic", "-f", df, "--build-arg", "WHO=berth", dir)
	if code != 0 || !strings.Contains(out, "Step 1/5 : FROM "+ref) || !strings.Contains(out, "Successfully tagged app:classic") {
		t.Fatalf("classic build: %d %s\n%s", code, errs, out)
	}

	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nRUN exit 7\n"), 0o644)
	_, errs, code = berth(t, a.Host, "build", dir)
	if code != 1 || !strings.Contains(errs, "exit code: 7") {
		t.Fatalf("failing build: %d %s", code, errs)
	}
	_, errs, code = berthEnv(t, a.Host, map[string]string{"DOCKER_BUILDKIT": "0"}, "build", dir)
	// The RUN's exit code is the CLI's (ExitError), as with docker build.
	if code != 1 || !strings.Contains(errs, "exit status 7") {
		t.Fatalf("failing classic build: %d %s", code, errs)
	}
	// A classic-only option is refused by name, not ignored.
	_, errs, code = berth(t, a.Host, "build", "--memory", "64m", dir)
	if code == 0 || !strings.Contains(errs, "memory") {
		t.Fatalf("--memory with BuildKit: %d %s", code, errs)
	}
}
