package engine_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildDir writes files (name → content; a name ending in "@" is made
// executable) into a fresh directory: a build context.
func buildDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "@") {
			name, mode = strings.TrimSuffix(name, "@"), 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var stepRE = regexp.MustCompile(`(?m)^Step (\d+)/(\d+) : `)

// The example: a script COPYed into busybox, made executable by a
// RUN, run by CMD; a rebuild is all cache.
func TestBuildHelloWorld(t *testing.T) {
	e := newImageEnv(t)
	dir := buildDir(t, map[string]string{
		"helloworld": "#!/bin/sh\necho Hello, World!\n",
		"Dockerfile": "FROM " + e.ref + "\nCOPY helloworld /usr/local/bin/\nRUN chmod +x /usr/local/bin/helloworld\nCMD [\"helloworld\"]\n",
	})
	out := e.d.Must("image", "build", "-t", "helloworld:latest", dir)
	t.Log(out)
	mustContain(t, "build", out, "Step 1/4 : FROM "+e.ref, "Step 2/4 : COPY helloworld /usr/local/bin/",
		"Step 3/4 : RUN chmod +x /usr/local/bin/helloworld", " ---> Running in ", "Removing intermediate container",
		"Step 4/4 : CMD [\"helloworld\"]", "Successfully built ", "Successfully tagged helloworld:latest")
	if got := e.d.Must("container", "run", "--rm", "helloworld:latest"); got != "Hello, World!\n" {
		t.Fatalf("run: %q", got)
	}

	// Unchanged: every step after FROM comes from the cache, same image.
	id := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", "helloworld:latest"))
	again := e.d.Must("image", "build", "-t", "helloworld:latest", dir)
	t.Log(again)
	if n := strings.Count(again, " ---> Using cache"); n != 3 || strings.Contains(again, "Running in") {
		t.Fatalf("rebuild: %d cache hits, want 3:\n%s", n, again)
	}
	mustContain(t, "rebuild", again, "Successfully built "+strings.TrimPrefix(id, "sha256:")[:12])

	// The build's intermediate images stay out of `docker images`, and
	// the image's history names the steps.
	if list := e.d.Must("images", "-q"); strings.Count(list, "\n") != 2 {
		t.Fatalf("images: %q", list)
	}
	hist := e.d.Must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "helloworld:latest")
	mustContain(t, "history", hist, `CMD ["helloworld"]`, "chmod +x /usr/local/bin/helloworld", "COPY file:")
}
