package engine_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

// newClassicEnv is newImageEnv with `docker build` on the classic builder
// (DOCKER_BUILDKIT=0), which these tests are about; buildkit_test.go has
// BuildKit's.
func newClassicEnv(t *testing.T) imageEnv {
	e := newImageEnv(t)
	e.d.Classic()
	return e
}

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

// The example: a script COPYed into busybox, made executable by a
// RUN, run by CMD; a rebuild is all cache.
func TestBuildHelloWorld(t *testing.T) {
	e := newClassicEnv(t)
	dir := buildDir(t, map[string]string{
		"helloworld": "#!/bin/sh\necho Hello, World!\n",
		"Dockerfile": "FROM " + e.ref + "\nCOPY helloworld /usr/local/bin/\nRUN chmod +x /usr/local/bin/helloworld\nCMD [\"helloworld\"]\n",
	})
	out := e.d.Must("image", "build", "-t", "helloworld:latest", dir)
	mustContain(t, "build", out, "Step 1/4 : FROM "+e.ref, "Step 2/4 : COPY helloworld /usr/local/bin/",
		"Step 3/4 : RUN chmod +x /usr/local/bin/helloworld", " ---> Running in ", "Removing intermediate container",
		"Step 4/4 : CMD [\"helloworld\"]", "Successfully built ", "Successfully tagged helloworld:latest")
	if got := e.d.Must("container", "run", "--rm", "helloworld:latest"); got != "Hello, World!\n" {
		t.Fatalf("run: %q", got)
	}

	// Unchanged: every step after FROM comes from the cache, same image.
	id := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", "helloworld:latest"))
	again := e.d.Must("image", "build", "-t", "helloworld:latest", dir)
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

// A multi-stage build copies from its builder stage; build args reach ARG
// and RUN; --target stops at a stage; .dockerignore keeps files out.
func TestBuildMultiStageArgsAndIgnore(t *testing.T) {
	e := newClassicEnv(t)
	dir := buildDir(t, map[string]string{
		"Dockerfile": "ARG BASE=" + e.ref + "\n" +
			"FROM $BASE AS builder\n" +
			"ARG GREETING=hi\n" +
			"RUN mkdir /out && echo \"$GREETING from the builder\" > /out/msg\n" +
			"FROM ${BASE}\n" +
			"ARG GREETING\n" +
			"ENV SAID=$GREETING\n" +
			"COPY --from=builder /out/msg /msg\n" +
			"COPY . /ctx/\n" +
			"CMD [\"cat\", \"/msg\"]\n",
		".dockerignore": "ignored.txt\n*.log\n!keep.log\n",
		"ignored.txt":   "no",
		"a.log":         "no",
		"keep.log":      "yes",
		"sub/kept.txt":  "yes",
	})
	r := e.d.Run(nil, "build", "-t", "multi:1", "--build-arg", "GREETING=hello", "--build-arg", "NOPE=1", dir)
	if r.Code != 0 {
		t.Fatalf("build: %s\n%s", r.Stdout, r.Stderr)
	}
	// The ARG before FROM is a step of its own, as dockerd counts it.
	mustContain(t, "build", r.Stdout, "Step 1/10 : ARG BASE=", "Step 2/10 : FROM $BASE AS builder", "Step 10/10 : CMD",
		"[Warning] One or more build-args [NOPE] were not consumed")
	if got := e.d.Must("run", "--rm", "multi:1"); got != "hello from the builder\n" {
		t.Fatalf("run: %q", got)
	}
	if got := e.d.Must("run", "--rm", "multi:1", "sh", "-c", "echo $SAID; cd /ctx && find . -type f | sort"); got != "hello\n./.dockerignore\n./Dockerfile\n./keep.log\n./sub/kept.txt\n" {
		t.Fatalf("context copied: %q", got)
	}
	// Defaults apply without build args; --target stops at the builder.
	out := e.d.Must("build", "-t", "stage:1", "--target", "builder", dir)
	mustContain(t, "target", out, "Step 4/4 : RUN")
	if got := e.d.Must("run", "--rm", "stage:1", "cat", "/out/msg"); got != "hi from the builder\n" {
		t.Fatalf("target run: %q", got)
	}
	if msg := e.d.Fail("build", "--target", "nosuch", dir); !strings.Contains(msg, "failed to reach build target nosuch") {
		t.Fatalf("bad target: %s", msg)
	}
}

// The engine applies .dockerignore itself too: an API client may send a
// whole folder.
func TestBuildAPIHonoursDockerignore(t *testing.T) {
	e := newClassicEnv(t)
	e.d.Must("pull", e.ref)
	ctx := tarOf(t, []tarFile{
		{name: "Dockerfile", body: "FROM " + e.ref + "\nCOPY . /ctx/\n"},
		{name: ".dockerignore", body: "secret*\nbuild/\n"},
		{name: "secret.key", body: "k"},
		{name: "build/out.bin", body: "b"},
		{name: "src/main.go", body: "package main"},
	})
	msgs, status := postBuild(t, e, "t=ign:1", ctx)
	if status != 200 || msgs.err != "" {
		t.Fatalf("build: %d %s", status, msgs.err)
	}
	if got := e.d.Must("run", "--rm", "ign:1", "find", "/ctx", "-type", "f"); strings.Contains(got, "secret") || strings.Contains(got, "out.bin") || !strings.Contains(got, "/ctx/src/main.go") {
		t.Fatalf("copied: %q", got)
	}
	if msgs.auxID == "" {
		t.Fatal("no aux image ID in the stream")
	}
}

// A broken Dockerfile fails with an error naming the line or step, and no
// image gets (or loses) the tag.
func TestBuildBrokenDockerfiles(t *testing.T) {
	e := newClassicEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("tag", e.ref, "broken:1")
	want := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", "broken:1"))
	for _, tc := range []struct {
		name, dockerfile, msg string
		code                  int
	}{
		{"unknown instruction", "FROM " + e.ref + "\nFOO bar\n", "dockerfile parse error on line 2: unknown instruction: FOO", 1},
		{"missing file", "FROM " + e.ref + "\nCOPY missing.txt /\n", "step 2/2 (COPY missing.txt /): file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist", 1},
		{"failing run", "FROM " + e.ref + "\nRUN echo partial > /f\nRUN exit 3\nCMD x\n", "step 3/4 (RUN exit 3): The command '/bin/sh -c exit 3' returned a non-zero code: 3", 3},
		{"no from", "RUN true\n", "no build stage in current context", 1},
		{"empty", "\n", "the Dockerfile (Dockerfile) cannot be empty", 1},
		{"comments only", "# nothing\n", "file with no instructions", 1},
		{"bad from", "FROM \"\"\n", "", 1},
		{"bad chown", "FROM " + e.ref + "\nCOPY --chown=nobodyhere Dockerfile /\n", "unable to find user nobodyhere", 1},
		{"heredoc", "FROM " + e.ref + "\nRUN <<EOF\necho hi\nEOF\n", "here-document", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildDir(t, map[string]string{"Dockerfile": tc.dockerfile})
			r := e.d.Run(nil, "build", "-t", "broken:1", dir)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.msg) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nstdout:\n%s", r.Code, tc.code, r.Stderr, r.Stdout)
			}
			if got := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", "broken:1")); got != want {
				t.Fatalf("the tag moved to %s", got)
			}
		})
	}
	// A failed RUN's container stays for inspection (as with dockerd),
	// unless --force-rm.
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN exit 4\n"})
	before := e.d.Must("ps", "-aq")
	e.d.Run(nil, "build", "--force-rm", dir)
	if after := e.d.Must("ps", "-aq"); after != before {
		t.Fatalf("--force-rm left containers: %q → %q", before, after)
	}
}

// Hostile contexts: names that climb out, absolute names, writes through
// symlinks, and COPY of symlinks that point out of the context. Nothing
// outside is read or written; the error says why.
func TestBuildHostileContexts(t *testing.T) {
	e := newClassicEnv(t)
	e.d.Must("pull", e.ref)
	marker := "berth-escape-" + fmt.Sprint(os.Getpid())
	df := tarFile{name: "Dockerfile", body: "FROM " + e.ref + "\nCOPY . /ctx/\n"}
	for _, tc := range []struct {
		name  string
		files []tarFile
		msg   string
	}{
		{"dotdot", []tarFile{df, {name: "../" + marker, body: "x"}}, "path escapes the build context"},
		{"deep dotdot", []tarFile{df, {name: "a/../../../" + marker, body: "x"}}, "path escapes the build context"},
		{"absolute", []tarFile{df, {name: "/tmp/" + marker, body: "x"}}, "absolute path in the build context"},
		{"through symlink", []tarFile{df, {name: "d", link: "/tmp"}, {name: "d/" + marker, body: "x"}}, "d is not a directory"},
		{"device", []tarFile{df, {name: "null", typ: tar.TypeChar}}, "special files"},
		{"not a tar", nil, "not a tar archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte("FROM scratch\n")
			if tc.files != nil {
				body = tarOf(t, tc.files)
			}
			msgs, status := postBuild(t, e, "t=hostile:1", body)
			want := http.StatusBadRequest
			if tc.files == nil {
				want = http.StatusInternalServerError // as dockerd answers a context it cannot read
			}
			if status != want || !strings.Contains(msgs.err, tc.msg) {
				t.Fatalf("status %d, error %q; want %d with %q", status, msgs.err, want, tc.msg)
			}
		})
	}
	for _, p := range []string{"/tmp/" + marker, filepath.Join(e.agent.Root, "build", marker), filepath.Join(e.agent.Root, "build", "tmp", marker)} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s was written", p)
		}
	}
	if n, _ := os.ReadDir(filepath.Join(e.agent.Root, "build", "tmp")); len(n) != 0 {
		t.Fatalf("contexts left behind: %v", n)
	}

	// Symlinks in a context are fine until a COPY follows one out of it.
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	for _, tc := range []struct{ name, link, src string }{
		{"absolute", secret, "link"},
		{"relative", "../../../../../../../../.." + secret, "link"},
		{"dir", filepath.Dir(secret), "link/secret"},
	} {
		t.Run("copy "+tc.name, func(t *testing.T) {
			dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nCOPY " + tc.src + " /stolen\n", "ok.txt": "fine"})
			if err := os.Symlink(tc.link, filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			msg := e.d.Fail("build", "-t", "stolen:1", dir)
			if !strings.Contains(msg, "outside the build context") {
				t.Fatalf("error: %s", msg)
			}
		})
	}
	// A symlink within the context is followed; one copied as part of a
	// directory stays a symlink.
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nCOPY inner /followed\nCOPY tree /tree/\n",
		"real.txt": "inside", "tree/x": "x"})
	os.Symlink("real.txt", filepath.Join(dir, "inner"))
	os.Symlink(secret, filepath.Join(dir, "tree", "out"))
	e.d.Must("build", "-t", "links:1", dir)
	if got := e.d.Must("run", "--rm", "links:1", "sh", "-c", "cat /followed; readlink /tree/out"); got != "inside"+secret+"\n" {
		t.Fatalf("links: %q", got)
	}
}

type tarFile struct {
	name, body, link string
	typ              byte
}

func tarOf(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: f.typ, Size: int64(len(f.body))}
		switch {
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		case f.typ == 0:
			h.Typeflag = tar.TypeReg
		default:
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

type buildMessages struct {
	stream string
	err    string
	code   int
	auxID  string
}

// postBuild sends a context to POST /build and reads the answer.
func postBuild(t *testing.T, e imageEnv, query string, body []byte) (buildMessages, int) {
	t.Helper()
	resp, err := e.agent.HTTPClient().Post("http://berth/build?"+query, "application/x-tar", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m buildMessages
	if resp.StatusCode != http.StatusOK {
		var e struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		m.err = e.Message
		return m, resp.StatusCode
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var msg struct {
			Stream      string
			ErrorDetail *struct {
				Code    int
				Message string
			}
			Aux *struct{ ID string }
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		m.stream += msg.Stream
		if msg.ErrorDetail != nil {
			m.err, m.code = msg.ErrorDetail.Message, msg.ErrorDetail.Code
		}
		if msg.Aux != nil {
			m.auxID = msg.Aux.ID
		}
	}
	return m, resp.StatusCode
}

// A RUN step's layer holds what the command changed, not the mount points
// the runtime made for itself (/etc/hosts, /etc/hostname …).
func TestBuildRunLayerHoldsOnlyChanges(t *testing.T) {
	e := newClassicEnv(t)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN touch /made && echo x > /etc/added\n"})
	e.d.Must("build", "-t", "layer:1", dir)
	out := filepath.Join(t.TempDir(), "img.tar")
	e.d.Must("save", "-o", out, "layer:1")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 2 {
		t.Fatalf("manifest: %s %v", files["manifest.json"], err)
	}
	var names []string
	lr := tar.NewReader(bytes.NewReader(files[manifest[0].Layers[1]]))
	for {
		h, err := lr.Next()
		if err != nil {
			break
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	if strings.Join(names, " ") != "etc etc/added made" {
		t.Fatalf("RUN layer entries: %v", names)
	}
}

// Every config instruction lands in the image; COPY/ADD options apply; a
// changed file rebuilds from its step on; --no-cache rebuilds everything.
func TestBuildInstructionsAndCache(t *testing.T) {
	e := newClassicEnv(t)
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "pkg/data.txt", Typeflag: tar.TypeReg, Mode: 0o640, Size: 4, Uid: 7, Gid: 8})
	tw.Write([]byte("data"))
	tw.Close()
	dir := buildDir(t, map[string]string{
		"Dockerfile": `FROM ` + e.ref + `
ONBUILD RUN echo triggered > /tmp/onbuild
ENV APP=/opt/app PORT=8080
WORKDIR $APP
COPY --chown=user:nogroup --chmod=640 conf/*.conf ./conf/
ADD pkg.tar /unpacked/
COPY pkg.tar /packed/
LABEL org.example.name="demo app" version=1
EXPOSE ${PORT} 53/udp
VOLUME /data
USER nobody
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD test -f /etc/passwd
SHELL ["/bin/sh", "-ec"]
RUN id -u > /tmp/uid
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $APP"]
`,
		"conf/a.conf":  "a",
		"conf/b.conf":  "b",
		"conf/c.other": "c",
		"pkg.tar":      archive.String(),
	})
	e.d.Must("build", "-t", "inst:1", dir)
	var inspect []struct {
		Config struct {
			Env          []string
			WorkingDir   string
			Labels       map[string]string
			ExposedPorts map[string]any
			Volumes      map[string]any
			User         string
			StopSignal   string
			Healthcheck  struct {
				Test     []string
				Interval int64
				Timeout  int64
				Retries  int
			}
			Shell      []string
			OnBuild    []string
			Entrypoint []string
			Cmd        []string
		}
	}
	if err := json.Unmarshal([]byte(e.d.Must("image", "inspect", "inst:1")), &inspect); err != nil {
		t.Fatal(err)
	}
	c := inspect[0].Config
	if c.WorkingDir != "/opt/app" || c.Labels["org.example.name"] != "demo app" || c.Labels["version"] != "1" ||
		c.ExposedPorts["8080/tcp"] == nil || c.ExposedPorts["53/udp"] == nil || c.Volumes["/data"] == nil ||
		c.User != "nobody" || c.StopSignal != "SIGINT" || strings.Join(c.Healthcheck.Test, " ") != "CMD-SHELL test -f /etc/passwd" ||
		c.Healthcheck.Interval != 5e9 || c.Healthcheck.Timeout != 2e9 || c.Healthcheck.Retries != 4 ||
		strings.Join(c.Shell, " ") != "/bin/sh -ec" || strings.Join(c.OnBuild, "") != "RUN echo triggered > /tmp/onbuild" ||
		strings.Join(c.Entrypoint, " ") != "/bin/sh -c" || strings.Join(c.Cmd, " ") != "echo $APP" ||
		!strings.Contains(strings.Join(c.Env, " "), "APP=/opt/app") {
		t.Fatalf("config: %+v", c)
	}
	if got := e.d.Must("run", "--rm", "inst:1"); got != "/opt/app\n" {
		t.Fatalf("run: %q", got)
	}
	got := e.d.Must("run", "--rm", "-u", "0", "--entrypoint", "sh", "inst:1", "-c",
		"cat /tmp/uid; stat -c '%n %u:%g %a' conf/* /unpacked/pkg/data.txt; cat /unpacked/pkg/data.txt; ls /packed")
	if want := "65534\nconf/a.conf 1000:65534 640\nconf/b.conf 1000:65534 640\n/unpacked/pkg/data.txt 7:8 640\ndatapkg.tar\n"; got != want {
		t.Fatalf("files:\n%s\nwant:\n%s", got, want)
	}

	// ONBUILD triggers run in a child build.
	child := buildDir(t, map[string]string{"Dockerfile": "FROM inst:1\n"})
	out := e.d.Must("build", "-t", "child:1", child)
	mustContain(t, "child", out, "# Executing 1 build trigger")
	if got := e.d.Must("run", "--rm", "child:1", "cat /tmp/onbuild"); got != "triggered\n" {
		t.Fatalf("trigger: %q", got)
	}

	// A changed file misses the cache from its step on, not before.
	os.WriteFile(filepath.Join(dir, "conf", "b.conf"), []byte("changed"), 0o644)
	out = e.d.Must("build", "-t", "inst:1", dir)
	if n := strings.Count(out, "Using cache"); n != 3 {
		t.Fatalf("after a change: %d cache hits, want 3 (ONBUILD, ENV, WORKDIR):\n%s", n, out)
	}
	// An unused file is not an input.
	os.WriteFile(filepath.Join(dir, "conf", "c.other"), []byte("changed"), 0o644)
	out = e.d.Must("build", "-t", "inst:1", dir)
	if strings.Contains(out, "Running in") {
		t.Fatalf("a change to an unused file rebuilt:\n%s", out)
	}
	out = e.d.Must("build", "--no-cache", "-t", "inst:1", dir)
	if strings.Contains(out, "Using cache") {
		t.Fatalf("--no-cache used the cache:\n%s", out)
	}
}

// docker builder prune: the steps of tagged images stay (their rebuild
// stays cached) unless -a; other step images go.
func TestBuilderPrune(t *testing.T) {
	e := newClassicEnv(t)
	app := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN echo app > /app\nCMD [\"cat\", \"/app\"]\n"})
	e.d.Must("build", "-t", "app:1", app)
	other := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN echo other > /other\nRUN exit 1\n"})
	e.d.Run(nil, "build", "--force-rm", other)
	before := strings.Count(e.d.Must("images", "-aq"), "\n")

	out := e.d.Must("builder", "prune", "-f")
	mustContain(t, "prune", out, "Total reclaimed space:")
	if after := strings.Count(e.d.Must("images", "-aq"), "\n"); after != before-1 {
		t.Fatalf("images: %d before, %d after prune", before, after)
	}
	if out := e.d.Must("build", "-t", "app:1", app); strings.Count(out, "Using cache") != 2 {
		t.Fatalf("tagged image's steps were pruned:\n%s", out)
	}
	e.d.Must("builder", "prune", "-af")
	if out := e.d.Must("build", "-t", "app:1", app); strings.Contains(out, "Using cache") {
		t.Fatalf("prune -a left the cache:\n%s", out)
	}
	if got := e.d.Must("run", "--rm", "app:1"); got != "app\n" {
		t.Fatalf("run: %q", got)
	}
}

// A client that goes away ends its build: the RUN container is killed and
// removed, and nothing is tagged.
func TestBuildCanceledByClient(t *testing.T) {
	e := newClassicEnv(t)
	e.d.Must("pull", e.ref)
	ctx := tarOf(t, []tarFile{{name: "Dockerfile", body: "FROM " + e.ref + "\nRUN sleep 60\n"}})
	req, err := http.NewRequest(http.MethodPost, "http://berth/build?t=canceled:1", bytes.NewReader(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	req = req.WithContext(cctx)
	resp, err := e.agent.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read until the RUN container is running, then hang up.
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "Running in") {
	}
	waitFor(t, "the RUN container", 10*time.Second, func() bool { return e.d.Must("ps", "-q") != "" })
	cancel()
	resp.Body.Close()
	waitFor(t, "the RUN container to go", 15*time.Second, func() bool { return e.d.Must("ps", "-aq") == "" })
	if r := e.d.Run(nil, "image", "inspect", "canceled:1"); r.Code == 0 {
		t.Fatal("a canceled build got its tag")
	}
}

// FROM scratch, --from by stage index, RUN's exec form, --pull and
// --platform, and what is refused with a clear error.
func TestBuildScratchIndexPullPlatform(t *testing.T) {
	e := newClassicEnv(t)
	dir := buildDir(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /files/\n" +
			"FROM " + e.ref + "\nCOPY --from=0 /files/hello.txt /hello\nRUN [\"/bin/sh\", \"-c\", \"echo exec form > /exec\"]\n",
		"hello.txt": "hello\n",
	})
	e.d.Must("build", "-t", "files:1", dir)
	if got := e.d.Must("run", "--rm", "files:1", "cat", "/hello", "/exec"); got != "hello\nexec form\n" {
		t.Fatalf("run: %q", got)
	}
	// The scratch stage alone: one layer holding only what was copied.
	scratch := buildDir(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /files/\n", "hello.txt": "hi"})
	e.d.Must("build", "-t", "only:1", scratch)
	if n := e.d.Must("image", "inspect", "-f", "{{len .RootFS.Layers}}", "only:1"); n != "1\n" {
		t.Fatalf("scratch image layers: %q", n)
	}

	// --pull fetches a newer base even when one is present.
	oldID := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", e.ref))
	testkit.Push(t, e.ref, testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"v": "2"}},
		testkit.LayerTar(testkit.BusyboxEntries(t))))
	plain := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nLABEL built=1\n"})
	out := e.d.Must("build", "-t", "pulled:1", plain)
	mustContain(t, "no --pull", out, " ---> "+strings.TrimPrefix(oldID, "sha256:")[:12])
	out = e.d.Must("build", "--pull", "-t", "pulled:1", plain)
	mustContain(t, "--pull", out, "Pulling from")
	if v := e.d.Must("image", "inspect", "-f", "{{index .Config.Labels \"v\"}}", "pulled:1"); v != "2\n" {
		t.Fatalf("--pull did not use the new base: %q", v)
	}

	for _, tc := range []struct {
		args            []string
		dockerfile, msg string
	}{
		{[]string{"--platform", "linux/s390x"}, "FROM " + e.ref + "\n", `platform "linux/s390x" is not supported`},
		{nil, "FROM --platform=linux/arm64 " + e.ref + "\n", `platform "linux/arm64" is not supported`},
		{nil, "FROM " + e.ref + "\nADD https://example.com/x.tar /\n", "remote URLs are not supported"},
		{nil, "FROM " + e.ref + "\nRUN --mount=type=cache,target=/c true\n", "RUN --mount needs BuildKit"},
		{nil, "FROM " + e.ref + "\nCOPY ../outside /\n", "forbidden path outside the build context: ../outside"},
		{nil, "FROM " + e.ref + "\nCOPY a b /notadir\n", "the destination must be a directory and end with a /"},
		{nil, "FROM " + e.ref + "\nCOPY --from=later /x /\nFROM " + e.ref + " AS later\n", "refers to the current or a later build stage"},
	} {
		d := buildDir(t, map[string]string{"Dockerfile": tc.dockerfile, "a": "a", "b": "b"})
		if msg := e.d.Fail(append(append([]string{"build"}, tc.args...), d)...); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %s", strings.TrimSpace(tc.dockerfile), msg)
		}
	}
}

// RUN steps are on the default bridge network, or on the one --network
// names.
func TestBuildRunNetwork(t *testing.T) {
	e := newClassicEnv(t)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN cut -d: -f1 /proc/net/dev | tr -d ' ' | grep -v '|' | sort | tr '\\n' ' ' > /ifaces\n"})
	e.d.Must("build", "-t", "net:bridge", dir)
	if got := e.d.Must("run", "--rm", "net:bridge", "cat", "/ifaces"); !strings.Contains(got, "eth0") {
		t.Fatalf("default network: %q", got)
	}
	e.d.Must("build", "--no-cache", "--network", "none", "-t", "net:none", dir) // the network is not part of the cache key, as with dockerd
	if got := e.d.Must("run", "--rm", "net:none", "cat", "/ifaces"); got != "lo " {
		t.Fatalf("--network none: %q", got)
	}
}

// `docker build -` (a Dockerfile alone on stdin) and `-f -` (the Dockerfile
// on stdin, the context a folder).
func TestBuildDockerfileFromStdin(t *testing.T) {
	e := newClassicEnv(t)
	df := "FROM " + e.ref + "\nRUN echo from stdin > /s\n"
	if r := e.d.Run(strings.NewReader(df), "build", "-t", "stdin:1", "-"); r.Code != 0 {
		t.Fatalf("build -: %s\n%s", r.Stdout, r.Stderr)
	}
	if got := e.d.Must("run", "--rm", "stdin:1", "cat", "/s"); got != "from stdin\n" {
		t.Fatalf("run: %q", got)
	}
	dir := buildDir(t, map[string]string{"f.txt": "file\n", "Dockerfile": "FROM scratch\n"})
	if r := e.d.Run(strings.NewReader("FROM "+e.ref+"\nCOPY . /c/\n"), "build", "-t", "stdin:2", "-f", "-", dir); r.Code != 0 {
		t.Fatalf("build -f -: %s\n%s", r.Stdout, r.Stderr)
	}
	// The generated Dockerfile name stays out of the image.
	if got := e.d.Must("run", "--rm", "stdin:2", "ls", "-A", "/c"); got != "Dockerfile\nf.txt\n" {
		t.Fatalf("context: %q", got)
	}
}

// Builds leave nothing behind: after cached, uncached, failing and
// canceled-by-error builds the engine holds the mounts, descriptors and
// goroutines it held before, no step roots, no unpacked contexts, and no
// containers but the failed RUN's it keeps on purpose.
func TestBuildsLeakNothing(t *testing.T) {
	e := newClassicEnv(t)
	e.d.Must("pull", "-q", e.ref)
	ok := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nCOPY f /f\nRUN cat /f > /g\nFROM " + e.ref + "\nCOPY --from=0 /g /h\n", "f": "x"})
	bad := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nCOPY f /f\nCOPY missing /\n", "f": "x"})
	e.d.Must("build", "-t", "leak:1", ok)
	pid := e.agent.Pid()
	type counts struct{ mounts, fds, goroutines int }
	count := func() counts {
		var c counts
		c.mounts = engineMounts(pid, e.agent.Root)
		var info struct{ NFd, NGoroutines int }
		json.Unmarshal([]byte(e.d.Must("info", "--format", "{{json .}}")), &info)
		c.fds, c.goroutines = info.NFd, info.NGoroutines
		return c
	}
	before := count()
	if before.fds == 0 || before.goroutines == 0 {
		t.Fatalf("counts read as zero: %+v", before)
	}
	for i := 0; i < 10; i++ {
		e.d.Must("build", "-t", "leak:1", ok)
		e.d.Must("build", "--no-cache", "-t", "leak:1", ok)
		e.d.Fail("build", bad)
	}
	var after counts
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = count()
		if after.goroutines <= before.goroutines && after.fds <= before.fds || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.mounts != before.mounts || after.fds > before.fds || after.goroutines > before.goroutines {
		t.Fatalf("after 30 builds: %+v, before: %+v", after, before)
	}
	keys, _ := os.ReadDir(filepath.Join(e.agent.Root, "snapshot", "keys"))
	for _, k := range keys {
		if strings.HasPrefix(k.Name(), "build-") {
			t.Fatalf("step root left: %s", k.Name())
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(e.agent.Root, "build", "tmp")); len(tmp) != 0 {
		t.Fatalf("contexts left: %v", tmp)
	}
	if ps := e.d.Must("ps", "-aq"); ps != "" {
		t.Fatalf("containers left: %q", ps)
	}
}
