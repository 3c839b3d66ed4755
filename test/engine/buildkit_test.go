package engine_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/testkit"
)

// The docker CLI as people install it (with buildx) builds with BuildKit
// by default: no DOCKER_BUILDKIT in these tests. The base image is the
// busybox test image pulled into the engine and tagged with a name no
// registry has: FROM it needs the engine's store, not a pull.
type bkEnv struct {
	imageEnv
	base string
}

func newBuildKitEnv(t *testing.T) bkEnv {
	t.Helper()
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	base := "berth-test/base:1"
	e.d.Must("tag", e.ref, base)
	return bkEnv{imageEnv: e, base: base}
}

// build runs `docker build` with args and returns its combined output
// (BuildKit's progress goes to stderr); it fails the test on an error.
func (e bkEnv) build(t *testing.T, args ...string) string {
	t.Helper()
	r := e.d.Run(nil, append([]string{"build", "--progress=plain"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("docker build %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout + r.Stderr
}

func TestBuildKitHelloWorld(t *testing.T) {
	e := newBuildKitEnv(t)
	dir := buildDir(t, map[string]string{
		"helloworld": "#!/bin/sh\necho Hello, World!\n",
		"Dockerfile": "FROM " + e.base + "\nCOPY helloworld /usr/local/bin/\nRUN chmod +x /usr/local/bin/helloworld\nCMD [\"helloworld\"]\n",
	})
	out := e.build(t, "-t", "helloworld:bk", dir)
	mustContain(t, "build", out, `building with "default" instance using docker driver`,
		"[2/3] COPY helloworld /usr/local/bin/", "[3/3] RUN chmod +x /usr/local/bin/helloworld",
		"naming to docker.io/library/helloworld:bk done")
	// An ordinary image at once: listed, runnable.
	if got := e.d.Must("run", "--rm", "helloworld:bk"); got != "Hello, World!\n" {
		t.Fatalf("run: %q", got)
	}
	mustContain(t, "images", e.d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"), "helloworld:bk")
	id := e.d.Must("image", "inspect", "-f", "{{.Id}}", "helloworld:bk")

	// Nothing changed: every step is cached and the image is the same.
	again := e.build(t, "-t", "helloworld:bk", dir)
	cached := strings.Join(cachedSteps(again), "\n")
	mustContain(t, "cached steps", cached, "COPY helloworld", "RUN chmod")
	if id2 := e.d.Must("image", "inspect", "-f", "{{.Id}}", "helloworld:bk"); id2 != id {
		t.Fatalf("rebuild changed the image: %s → %s", id, id2)
	}

	// DOCKER_BUILDKIT=0 is still the classic builder.
	classic := *e.d
	classic.Env = append(append([]string(nil), e.d.Env...), "DOCKER_BUILDKIT=0")
	mustContain(t, "classic build", classic.Must("build", "-t", "helloworld:classic", dir),
		"Step 1/4 : FROM "+e.base, "Successfully tagged helloworld:classic")
}

// cachedSteps names the steps --progress=plain output reports as CACHED
// ("[2/3] COPY …"): each step is a block of lines "#N …".
func cachedSteps(out string) []string {
	names := map[string]string{}
	var cached []string
	for _, l := range strings.Split(out, "\n") {
		num, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(num, "#") {
			continue
		}
		if _, seen := names[num]; !seen {
			names[num] = rest
		}
		if rest == "CACHED" {
			cached = append(cached, names[num])
		}
	}
	return cached
}

func TestBuildKitMultiStageAndOptions(t *testing.T) {
	e := newBuildKitEnv(t)
	dir := buildDir(t, map[string]string{
		".dockerignore": "secret.txt\n",
		"keep.txt":      "kept\n",
		"secret.txt":    "must not be sent\n",
		"Dockerfile": "FROM " + e.base + " AS builder\nARG WHO=nobody\nRUN echo \"built by $WHO\" > /out.txt\n" +
			"COPY . /ctx/\nRUN ls /ctx > /ctx.list\n" +
			"FROM " + e.base + " AS final\nCOPY --from=builder /out.txt /ctx.list /\nCMD [\"cat\", \"/out.txt\", \"/ctx.list\"]\n",
	})
	e.build(t, "--build-arg", "WHO=berth", "-t", "ms:1", dir)
	got := e.d.Must("run", "--rm", "ms:1")
	mustContain(t, "run", got, "built by berth", "keep.txt", "Dockerfile")
	if strings.Contains(got, "secret.txt") {
		t.Fatalf(".dockerignore'd file reached the build:\n%s", got)
	}

	// --target stops at the builder stage.
	e.build(t, "--build-arg", "WHO=berth", "--target", "builder", "-t", "ms:builder", dir)
	mustContain(t, "target", e.d.Must("run", "--rm", "ms:builder", "ls", "/ctx"), "keep.txt")

	// --no-cache runs every step again.
	out := e.build(t, "--no-cache", "--build-arg", "WHO=berth", "-t", "ms:1", dir)
	for _, step := range cachedSteps(out) {
		if !strings.Contains(step, "] FROM ") {
			t.Fatalf("--no-cache used the cache for %q:\n%s", step, out)
		}
	}

	// --pull goes to the registry, even for an image the engine has: the
	// registry's image builds; the local-only name cannot be pulled.
	pulled := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nRUN true\n"})
	mustContain(t, "--pull", e.build(t, "--pull", "-t", "pulled:1", pulled), "resolve "+e.ref)
	r := e.d.Run(nil, "build", "--pull", "-t", "nopull:1", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "berth-test/base") {
		t.Fatalf("--pull of a name no registry has: exit %d\n%s", r.Code, r.Stderr)
	}
}

// --progress=plain shows a step's output while the step still runs.
func TestBuildKitProgressStreams(t *testing.T) {
	e := newBuildKitEnv(t)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN echo step-started && sleep 3 && echo step-done\n"})
	cmd := e.d.Cmd(t.Context(), "build", "--progress=plain", "--no-cache", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var sawAt time.Duration
	var all strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if sawAt == 0 && strings.HasSuffix(sc.Text(), " step-started") {
			sawAt = time.Since(began)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build: %v\n%s", err, all.String())
	}
	total := time.Since(began)
	if sawAt == 0 || total-sawAt < 2*time.Second {
		t.Fatalf("step output came at %v of %v: not streamed while the step ran\n%s", sawAt, total, all.String())
	}
}

func TestBuildKitMounts(t *testing.T) {
	e := newBuildKitEnv(t)
	const secret = "TOPSECRET-4b1d"
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + " AS src\nRUN echo from-stage > /msg\n" +
		"FROM " + e.base + "\nARG N\n" +
		"RUN --mount=type=cache,target=/root/.cache echo $N >> /root/.cache/runs && wc -l < /root/.cache/runs > /runs\n" +
		"RUN --mount=type=secret,id=s md5sum < /run/secrets/s | cut -c1-32 > /secret-md5\n" +
		"RUN --mount=type=bind,from=src,source=/msg,target=/mnt/msg cp /mnt/msg /msg\n" +
		"COPY --link --from=src /msg /linked\n" +
		"RUN <<EOF\necho heredoc-line-1 > /heredoc\necho heredoc-line-2 >> /heredoc\nEOF\n",
	})
	for _, n := range []string{"1", "2"} {
		e.build(t, "--secret", "id=s,src="+secretFile, "--build-arg", "N="+n, "-t", "mounts:1", dir)
	}
	got := e.d.Must("run", "--rm", "mounts:1", "cat", "/runs", "/secret-md5", "/msg", "/linked", "/heredoc")
	// The cache mount kept the first build's line: two lines after two
	// builds. The step read the secret (its checksum is in the image).
	want := fmt.Sprintf("2\n%x\nfrom-stage\nfrom-stage\nheredoc-line-1\nheredoc-line-2\n", md5.Sum([]byte(secret)))
	if strings.ReplaceAll(got, " ", "") != want {
		t.Fatalf("image content:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(e.d.Must("run", "--rm", "mounts:1", "ls", "/root"), ".cache") {
		// The mount point may stay as an empty directory; its content must not.
		if out := e.d.Must("run", "--rm", "mounts:1", "ls", "-A", "/root/.cache"); out != "" {
			t.Fatalf("cache mount content in the image: %q", out)
		}
	}
	// The secret is in no layer, history entry or config.
	if out := e.d.Must("history", "--no-trunc", "mounts:1"); strings.Contains(out, secret) {
		t.Fatalf("secret in history:\n%s", out)
	}
	if out := e.d.Must("image", "inspect", "mounts:1"); strings.Contains(out, secret) {
		t.Fatalf("secret in the image config:\n%s", out)
	}
	saved := e.d.Must("save", "mounts:1")
	if len(saved) < 1024 {
		t.Fatalf("docker save wrote %d bytes", len(saved))
	}
	scanArchive(t, []byte(saved), func(name string, data []byte) {
		if bytes.Contains(data, []byte(secret)) {
			t.Fatalf("secret found in %s of the saved image", name)
		}
	})
}

// scanArchive calls f for every file of a tar, descending into the tar
// files it holds (an image's layers).
func scanArchive(t *testing.T, data []byte, f func(name string, data []byte)) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		f(h.Name, b)
		if _, err := tar.NewReader(bytes.NewReader(b)).Next(); err == nil {
			scanArchive(t, b, f)
		}
	}
}

// Two independent stages run at the same time: their steps' intervals (by
// the host's uptime clock, the same in every namespace) overlap.
func TestBuildKitParallelStages(t *testing.T) {
	e := newBuildKitEnv(t)
	stage := func(name string) string {
		return "FROM " + e.base + " AS " + name + "\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 2 && cut -d' ' -f1 /proc/uptime > /end\n"
	}
	dir := buildDir(t, map[string]string{"Dockerfile": stage("a") + stage("b") +
		"FROM " + e.base + "\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\nCOPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n"})
	e.build(t, "-t", "par:1", dir)
	var v [4]float64
	for i, f := range []string{"/a.start", "/a.end", "/b.start", "/b.end"} {
		s := strings.TrimSpace(e.d.Must("run", "--rm", "par:1", "cat", f))
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %q", f, s)
		}
		v[i] = x
	}
	if !(v[0] < v[3] && v[2] < v[1]) {
		t.Fatalf("stages ran one after the other: a %.2f–%.2f, b %.2f–%.2f", v[0], v[1], v[2], v[3])
	}
}

func TestBuildKitOutputsAndCache(t *testing.T) {
	e := newBuildKitEnv(t)
	dir := buildDir(t, map[string]string{"hello.txt": "hello\n",
		"Dockerfile": "FROM " + e.base + " AS b\nRUN echo made > /made.txt\nFROM scratch\nCOPY --from=b /made.txt /\nCOPY hello.txt /\n"})
	out := filepath.Join(t.TempDir(), "out")
	e.build(t, "-o", "type=local,dest="+out, dir)
	for name, want := range map[string]string{"made.txt": "made\n", "hello.txt": "hello\n"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != want {
			t.Fatalf("local output %s: %q, %v", name, b, err)
		}
	}
	tarFile := filepath.Join(t.TempDir(), "out.tar")
	e.build(t, "-o", "type=tar,dest="+tarFile, dir)
	tb, err := os.ReadFile(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	scanArchive(t, tb, func(name string, data []byte) { names[name] = string(data) })
	if names["made.txt"] != "made\n" || names["hello.txt"] != "hello\n" {
		t.Fatalf("tar output: %v", names)
	}

	// The cache: listed by buildx du and counted by system df, then
	// emptied by builder prune -af.
	du := e.d.Must("buildx", "du")
	mustContain(t, "buildx du", du, "Reclaimable:", "Total:")
	if strings.Count(du, "\n") < 4 {
		t.Fatalf("buildx du lists no records:\n%s", du)
	}
	if n := buildCacheCount(t, e.d); n == 0 {
		t.Fatalf("system df counts no build cache")
	}
	mustContain(t, "builder prune", e.d.Must("builder", "prune", "-af"), "Total:")
	if n := buildCacheCount(t, e.d); n != 0 {
		t.Fatalf("system df counts %d build cache records after prune -af:\n%s", n, e.d.Must("buildx", "du"))
	}
	// And the classic endpoint prunes BuildKit's cache too (API clients
	// that send POST /build/prune).
	e.build(t, "-t", "again:1", buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN echo again\n"}))
	if n := buildCacheCount(t, e.d); n == 0 {
		t.Fatalf("no build cache after a build")
	}
	req := e.agent.HTTPClient()
	resp, err := req.Post("http://berth/v1.47/build/prune?all=1", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /build/prune: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := buildCacheCount(t, e.d); n != 0 {
		t.Fatalf("POST /build/prune left %d records", n)
	}
}

// buildCacheCount is the number of build cache records `docker system df`
// reports.
func buildCacheCount(t *testing.T, d *testkit.Docker) int {
	t.Helper()
	out := d.Must("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Build Cache ") {
			n, err := strconv.Atoi(strings.TrimPrefix(l, "Build Cache "))
			if err != nil {
				t.Fatalf("system df: %q", l)
			}
			return n
		}
	}
	t.Fatalf("system df has no build cache line:\n%s", out)
	return 0
}

func TestBuildKitBadInput(t *testing.T) {
	e := newBuildKitEnv(t)
	fail := func(files map[string]string, wants ...string) {
		t.Helper()
		r := e.d.Run(nil, "build", "--progress=plain", "-t", "bad:1", buildDir(t, files))
		if r.Code == 0 {
			t.Fatalf("build succeeded:\n%s", r.Stderr)
		}
		mustContain(t, "error", r.Stderr, wants...)
	}
	// A frontend error names the line.
	fail(map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN true\nFOO bar\n"},
		"Dockerfile:3", "unknown instruction: FOO")
	// A missing stage, a failing step (with its exit code).
	fail(map[string]string{"Dockerfile": "FROM " + e.base + "\nCOPY --from=nosuchstage /x /x\n"}, "nosuchstage")
	fail(map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN exit 3\n"}, "exit code: 3", "Dockerfile:2")
	// A frontend image that cannot be pulled is named.
	fail(map[string]string{"Dockerfile": "# syntax=registry.invalid/no/frontend:1\nFROM " + e.base + "\n"},
		"registry.invalid/no/frontend:1")
	if out := e.d.Must("images", "-q", "bad:1"); out != "" {
		t.Fatalf("a failed build tagged an image: %q", out)
	}

	// A context symlink that leads out of the context is not followed
	// onto the host.
	hostFile := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(hostFile, []byte("HOST-ONLY-CONTENT"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nCOPY link /copied\n"})
	if err := os.Symlink(hostFile, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	r := e.d.Run(nil, "build", "-t", "symlink:1", dir)
	if r.Code == 0 {
		out := e.d.Run(nil, "run", "--rm", "symlink:1", "cat", "/copied")
		if strings.Contains(out.Stdout, "HOST-ONLY-CONTENT") {
			t.Fatalf("COPY followed a context symlink onto the host")
		}
	}
	// The engine still serves.
	e.d.Must("version")
}

// Ctrl-C during a RUN ends the build at once; twenty cancelled builds leave
// no process, mount, cgroup or lease behind.
func TestBuildKitCancelLeaksNothing(t *testing.T) {
	e := newBuildKitEnv(t)
	// One project, built and interrupted again and again (a new step each
	// time), as a user hitting Ctrl-C does: its context's cache records are
	// made once. Cycle 0 warms up (what a first build makes once: the
	// builder's state, the engine's spare network namespace); the engine
	// restarts to count leases, and cycle 1 warms up again after it.
	dir := t.TempDir()
	cancelled := func(i int) {
		t.Helper()
		df := fmt.Sprintf("FROM %s\nRUN echo cycle-%d && sleep 30\n", e.base, i)
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := e.d.Cmd(t.Context(), "build", "--progress=plain", dir)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		started := false
		for sc.Scan() {
			if strings.HasSuffix(sc.Text(), fmt.Sprintf(" cycle-%d", i)) {
				started = true
				break
			}
		}
		if !started {
			cmd.Wait()
			t.Fatalf("cycle %d: the step never ran", i)
		}
		began := time.Now()
		cmd.Process.Signal(syscall.SIGINT)
		go io.Copy(io.Discard, stderr)
		err := cmd.Wait()
		if took := time.Since(began); took > 2*time.Second {
			t.Fatalf("cycle %d: the build took %v to end after Ctrl-C", i, took)
		}
		if err == nil {
			t.Fatalf("cycle %d: the build succeeded after Ctrl-C", i)
		}
	}
	cancelled(0)
	leases0 := builderLeases(t, e.agent)
	cancelled(1)
	builder := builderPid(t, e.agent.Pid())
	mounts0 := engineMounts(builder, e.agent.Root)
	for i := 2; i < 22; i++ {
		cancelled(i)
	}
	waitFor(t, "step processes to go", 10*time.Second, func() bool { return len(descendants(builder)) == 0 })
	if got := engineMounts(builder, e.agent.Root); got != mounts0 {
		t.Fatalf("builder mounts: %d before, %d after", mounts0, got)
	}
	steps, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.agent.CgroupParent, "buildkit", "*", "cgroup.procs"))
	if len(steps) > 0 {
		t.Fatalf("step cgroups left: %v", steps)
	}
	if pid := builderPid(t, e.agent.Pid()); pid != builder {
		t.Fatalf("the builder restarted (%d → %d)", builder, pid)
	}
	if leases := builderLeases(t, e.agent); leases != leases0 {
		t.Fatalf("builder leases: %d before, %d after", leases0, leases)
	}
}

// builderLeases counts the leases in the builder's content metadata (what
// keeps content and snapshots from collection) that never expire. BuildKit
// gives the leases of image metadata lookups a five-minute expiry on
// purpose; those must expire within minutes. bbolt locks the database
// while the builder runs, so the engine is restarted around the count.
func builderLeases(t *testing.T, a *testkit.Agent) int {
	t.Helper()
	a.Stop()
	defer a.Start()
	db, err := bolt.Open(filepath.Join(a.Root, "buildkit", "containerdmeta.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("v1"))
		if b != nil {
			b = b.Bucket([]byte("buildkit"))
		}
		if b != nil {
			b = b.Bucket([]byte("leases"))
		}
		if b == nil {
			return fmt.Errorf("no leases bucket")
		}
		return b.ForEach(func(k, _ []byte) error {
			var expire string
			if l := b.Bucket(k).Bucket([]byte("labels")); l != nil {
				expire = string(l.Get([]byte("containerd.io/gc.expire")))
			}
			if expire == "" {
				n++
				return nil
			}
			at, err := time.Parse(time.RFC3339, expire)
			if err != nil || time.Until(at) > 15*time.Minute {
				return fmt.Errorf("lease %s expires at %q", k, expire)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// builderPid is the berth-buildkitd child of the engine.
func builderPid(t *testing.T, engine int) int {
	t.Helper()
	for _, pid := range processesNamed("berth-buildkitd") {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(engine) {
			return pid
		}
	}
	t.Fatalf("no berth-buildkitd under engine %d", engine)
	return 0
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// processesNamed lists the PIDs whose command name (comm) is name.
func processesNamed(name string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == name {
			out = append(out, pid)
		}
	}
	return out
}

// A build cache past its bound is collected after the build that filled
// it, not left to fill the disk.
func TestBuildKitCacheBound(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--build-cache-max", strconv.Itoa(12 << 20)}})
	ref := reg.Addr + "/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	d := testkit.NewDocker(t, a.Host)
	d.Must("pull", "-q", ref)
	for i := range 4 {
		dir := buildDir(t, map[string]string{"Dockerfile": fmt.Sprintf("FROM %s\nRUN head -c 8000000 /dev/urandom > /blob-%d\n", ref, i)})
		d.Must("build", "-q", dir)
	}
	waitFor(t, "the cache to shrink under its bound", 30*time.Second, func() bool {
		out := d.Must("system", "df", "--format", "{{.Type}} {{.Size}}")
		for _, l := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(l, "Build Cache "); ok {
				return parseSize(s) <= 12<<20
			}
		}
		return false
	})
}

// parseSize reads docker's human sizes ("12.3MB", "512kB", "0B").
func parseSize(s string) float64 {
	units := []struct {
		suffix string
		mult   float64
	}{{"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f * u.mult
		}
	}
	return -1
}

// Compose v2 builds through buildx too: a two-service project with build
// sections builds and comes up.
func TestComposeBuildAndUp(t *testing.T) {
	e := newBuildKitEnv(t)
	testkit.InstallPlugins(t, e.d.ConfigDir, "compose")
	dir := buildDir(t, map[string]string{
		"web/Dockerfile": "FROM " + e.base + "\nARG GREETING\nRUN echo \"$GREETING from web\" > /greeting\nCMD [\"sh\", \"-c\", \"cat /greeting; sleep 300\"]\n",
		"api/Dockerfile": "FROM " + e.base + "\nRUN echo api > /name\nCMD [\"sh\", \"-c\", \"cat /name; sleep 300\"]\n",
		"compose.yaml": "services:\n  web:\n    build:\n      context: ./web\n      args:\n        GREETING: hello\n    image: bkproj-web:1\n" +
			"  api:\n    build: ./api\n    image: bkproj-api:1\n",
	})
	compose := func(args ...string) string {
		t.Helper()
		return e.d.Must(append([]string{"compose", "--project-directory", dir, "-p", "bkproj"}, args...)...)
	}
	compose("build")
	mustContain(t, "images", e.d.Must("images", "--format", "{{.Repository}}:{{.Tag}}"), "bkproj-web:1", "bkproj-api:1")
	compose("up", "--build", "-d")
	t.Cleanup(func() { e.d.Run(nil, "compose", "--project-directory", dir, "-p", "bkproj", "down", "-t", "1") })
	waitFor(t, "both services to run and log", 30*time.Second, func() bool {
		logs := e.d.Run(nil, "compose", "--project-directory", dir, "-p", "bkproj", "logs")
		return strings.Contains(logs.Stdout, "hello from web") && strings.Contains(logs.Stdout, "api")
	})
	ps := compose("ps", "--format", "{{.Service}} {{.State}}")
	mustContain(t, "compose ps", ps, "web running", "api running")
}

// POST /build?version=2, as API clients without buildx (and Berth's desktop
// and CLI) send it: the context in the body (any compression), BuildKit's
// progress as "moby.buildkit.trace" messages, the image as "moby.image.id".
func TestBuildKitAPIVersion2(t *testing.T) {
	e := newBuildKitEnv(t)
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for name, body := range map[string]string{
		"keep.txt":             "kept\n",
		"skip.txt":             "ignored\n",
		".dockerignore":        "skip.txt\n.dockerfile.0123abcd\n",
		".dockerfile.0123abcd": "FROM " + e.base + "\nCOPY . /ctx/\nRUN ls -A /ctx > /list\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ctxTar.Bytes())
	zw.Close()

	post := func(query string, body []byte) (int, []map[string]any) {
		t.Helper()
		resp, err := e.agent.HTTPClient().Post("http://berth/v1.47/build?version=2&"+query, "application/x-tar", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msgs []map[string]any
		dec := json.NewDecoder(resp.Body)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		return resp.StatusCode, msgs
	}
	code, msgs := post("t=v2:1&dockerfile=.dockerfile.0123abcd", gz.Bytes())
	traces, id := 0, ""
	for _, m := range msgs {
		if m["error"] != nil {
			t.Fatalf("build failed: %v", m["error"])
		}
		switch m["id"] {
		case "moby.buildkit.trace":
			if _, ok := m["aux"].(string); !ok {
				t.Fatalf("trace aux is not base64: %v", m["aux"])
			}
			traces++
		case "moby.image.id":
			id, _ = m["aux"].(map[string]any)["ID"].(string)
		}
	}
	if code != 200 || traces == 0 || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("status %d, %d traces, image %q", code, traces, id)
	}
	// .dockerignore applied, the outside Dockerfile kept out of the context.
	if got := e.d.Must("run", "--rm", "v2:1", "cat", "/list"); got != ".dockerignore\nkeep.txt\n" {
		t.Fatalf("context in the image: %q", got)
	}
	if got := strings.TrimSpace(e.d.Must("image", "inspect", "-f", "{{.Id}}", "v2:1")); got != id {
		t.Fatalf("image ID %s, tagged %s", id, got)
	}
	// q=1: only the image ID.
	_, msgs = post("q=1&dockerfile=.dockerfile.0123abcd", ctxTar.Bytes())
	if len(msgs) != 1 || msgs[0]["id"] != "moby.image.id" {
		t.Fatalf("q=1 sent %v", msgs)
	}
	// Options BuildKit cannot honour are refused by name.
	for q, want := range map[string]string{"memory=67108864": "memory", "remote=client-session": "session", "cpusetcpus=0": "cpusetcpus"} {
		code, msgs := post(q, ctxTar.Bytes())
		if code != 400 || len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]["message"]), want) {
			t.Fatalf("%s: %d %v", q, code, msgs)
		}
	}
}

// BuildKit reaches registries with the engine's rules: credentials from
// `docker login` (buildx's session) or X-Registry-Config (version=2), plain
// HTTP only for loopback and --insecure-registry hosts.
func TestBuildKitRegistryRules(t *testing.T) {
	// A registry with auth, on loopback.
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{Auth: true})
	private := reg.Addr + "/team/base:1"
	testkit.Push(t, private, testkit.BusyboxImage(t), remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Pass}))
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	d := testkit.NewDocker(t, a.Host)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + private + "\nRUN echo private-ok > /ok\n"})
	r := d.Run(nil, "build", "-t", "private:1", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "401 Unauthorized") && !strings.Contains(r.Stderr, "authorization") {
		t.Fatalf("build without login: exit %d\n%s", r.Code, r.Stderr)
	}
	d.Run(strings.NewReader(reg.Pass), "login", "-u", reg.User, "--password-stdin", reg.Addr)
	d.Must("build", "-t", "private:1", dir)
	if got := d.Must("run", "--rm", "private:1", "cat", "/ok"); got != "private-ok\n" {
		t.Fatalf("run: %q", got)
	}
	// version=2 with the credentials in X-Registry-Config, on an engine of
	// its own: BuildKit keeps a registry's token for the scope it was
	// given, so after the pull above a builder would pull without any.
	a = testkit.StartAgent(t, testkit.AgentOptions{})
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	df := "FROM " + private + "\nRUN echo v2 > /v2\n"
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), Typeflag: tar.TypeReg})
	tw.Write([]byte(df))
	tw.Close()
	post := func(creds map[string]map[string]string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://berth/v1.47/build?version=2&t=private:v2&nocache=1", bytes.NewReader(ctxTar.Bytes()))
		req.Header.Set("Content-Type", "application/x-tar")
		if creds != nil {
			b, _ := json.Marshal(creds)
			req.Header.Set("X-Registry-Config", base64.URLEncoding.EncodeToString(b))
		}
		resp, err := a.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if out := post(nil); !strings.Contains(out, `"error"`) {
		t.Fatalf("version=2 without credentials built")
	}
	if out := post(map[string]map[string]string{reg.Addr: {"username": reg.User, "password": reg.Pass}}); !strings.Contains(out, "moby.image.id") || strings.Contains(out, `"error"`) {
		t.Fatalf("version=2 with X-Registry-Config: %.2000s", out)
	}

	// A registry on another address: plain HTTP only when the engine was
	// told it is insecure.
	open := testkit.StartRegistry(t, testkit.RegistryOptions{Listen: "0.0.0.0:0"})
	ip := nonLoopbackIP(t)
	_, port, _ := net.SplitHostPort(open.Addr)
	remoteRef := net.JoinHostPort(ip, port) + "/open/base:1"
	testkit.Push(t, remoteRef, testkit.BusyboxImage(t))
	dir = buildDir(t, map[string]string{"Dockerfile": "FROM " + remoteRef + "\nRUN true\n"})
	r = d.Run(nil, "build", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "HTTP response to HTTPS client") {
		t.Fatalf("plain HTTP to %s without --insecure-registry: exit %d\n%s", remoteRef, r.Code, r.Stderr)
	}
	insecure := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--insecure-registry", net.JoinHostPort(ip, port)}})
	testkit.NewDocker(t, insecure.Host).Must("build", dir)
}

// nonLoopbackIP is an IPv4 address of this host other than loopback, on
// an interface no engine made (those come and go with other tests).
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "br-") ||
			strings.HasPrefix(ifc.Name, "veth") || strings.HasPrefix(ifc.Name, "docker") || strings.HasPrefix(ifc.Name, "bdk") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	t.Skip("needs a non-loopback IPv4 address on this host")
	return ""
}

// A RUN step is confined as a `docker run` container is: the same
// capabilities, seccomp filter, no-new-privileges, masked and read-only
// /proc paths; and its cgroup is under the engine's parent.
func TestBuildKitStepConfinement(t *testing.T) {
	e := newBuildKitEnv(t)
	probe := `grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status; ` +
		`echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); echo sysrq=$( (echo h > /proc/sysrq-trigger) 2>/dev/null && echo writable || echo refused); ` +
		`echo keys=$(cat /proc/keys 2>/dev/null | wc -l)`
	run := e.d.Must("run", "--rm", e.base, "sh", "-c", probe)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN (" + probe + ") > /probe\n"})
	e.build(t, "-t", "probe:1", dir)
	step := e.d.Must("run", "--rm", "probe:1", "cat", "/probe")
	if step != run {
		t.Fatalf("a RUN step is confined differently from docker run:\nRUN step:\n%s\ndocker run:\n%s", step, run)
	}
	mustContain(t, "confinement", step, "Seccomp:\t2", "kcore=0", "sysrq=refused")

	// While a step runs, its cgroup is PARENT/buildkit/<id>.
	slow := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.base + "\nRUN sleep 3\n"})
	cmd := e.d.Cmd(t.Context(), "build", "--no-cache", slow)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the step's cgroup", 20*time.Second, func() bool {
		procs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.agent.CgroupParent, "buildkit", "*", "cgroup.procs"))
		if len(procs) == 0 {
			procs, _ = filepath.Glob(filepath.Join("/sys/fs/cgroup", e.agent.CgroupParent, "buildkit", "*", "cgroup.procs"))
		}
		for _, p := range procs {
			if b, _ := os.ReadFile(p); len(bytes.TrimSpace(b)) > 0 {
				return true
			}
		}
		return false
	})
	cmd.Wait()
}

// With no builder to start, buildx is told why (and does not go and boot a
// builder container from Docker Hub instead).
func TestBuildKitMissingBuilderSaysWhy(t *testing.T) {
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--buildkitd", "/nonexistent/berth-buildkitd"}})
	d := testkit.NewDocker(t, a.Host)
	r := d.Run(nil, "build", buildDir(t, map[string]string{"Dockerfile": "FROM scratch\n"}))
	if r.Code == 0 || !strings.Contains(r.Stderr, "BuildKit builder not installed") || strings.Contains(r.Stderr, "booting buildkit") {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
}
