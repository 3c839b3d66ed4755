package engine_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-dev/berth/internal/testkit"
)

// imageEnv is a registry holding the busybox test image, an agent, and the
// docker CLI pointed at it.
type imageEnv struct {
	reg   *testkit.Registry
	agent *testkit.Agent
	d     *testkit.Docker
	ref   string // REG/busybox:latest
}

func newImageEnv(t *testing.T) imageEnv {
	t.Helper()
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	ref := reg.Addr + "/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t))
	return imageEnv{reg: reg, agent: a, d: testkit.NewDocker(t, a.Host), ref: ref}
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: missing %q in:\n%s", what, w, out)
		}
	}
}

func TestPullShowsProgressAndIsIdempotent(t *testing.T) {
	e := newImageEnv(t)
	out := e.d.Must("pull", e.ref)
	mustContain(t, "first pull", out, "latest: Pulling from busybox", "Pull complete", "Digest: sha256:",
		"Status: Downloaded newer image for "+e.ref)
	out = e.d.Must("pull", e.ref)
	mustContain(t, "second pull", out, "Status: Image is up to date for "+e.ref)
	if strings.Contains(out, "Pull complete") {
		t.Fatalf("second pull downloaded again:\n%s", out)
	}

	// The JSON stream carries the per-layer states dockerd sends.
	c := e.agent.HTTPClient()
	e.d.Must("rmi", e.ref)
	resp, err := c.Post("http://berth/images/create?fromImage="+e.reg.Addr+"/busybox&tag=latest", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		raw.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	mustContain(t, "pull stream", raw.String(), `"status":"Pulling fs layer"`, `"status":"Downloading","progressDetail":{"current":`,
		`"status":"Verifying Checksum"`, `"status":"Download complete"`, `"status":"Extracting"`, `"status":"Pull complete"`)
}

func TestImagesInspectHistoryTag(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	id := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{.Id}}", e.ref))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("image ID %q", id)
	}
	out := e.d.Must("image", "inspect", "--format", `{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{len .RootFS.Layers}} {{index .RepoTags 0}}`, e.ref)
	if got, want := strings.TrimSpace(out), `linux/amd64 ["sh"] 1 `+e.ref; got != want {
		t.Fatalf("inspect: %q, want %q", got, want)
	}
	if out := e.d.Must("image", "inspect", "--format", "{{len .RepoDigests}}", e.ref); strings.TrimSpace(out) != "1" {
		t.Fatalf("RepoDigests: %q", out)
	}

	// By digest, as RepoDigests names it.
	digestRef := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{index .RepoDigests 0}}", e.ref))
	out = e.d.Must("pull", digestRef)
	mustContain(t, "pull by digest", out, "Status: Image is up to date for "+digestRef)
	if got := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{.Id}}", digestRef)); got != id {
		t.Fatalf("inspect by digest: %s", got)
	}

	e.d.Must("tag", e.ref, "berth/copy:v1")
	out = e.d.Must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	short := strings.TrimPrefix(id, "sha256:")[:12]
	mustContain(t, "images", out, e.ref+" "+short, "berth/copy:v1 "+short)
	out = e.d.Must("images", "--filter", "reference=berth/*", "--format", "{{.Repository}}:{{.Tag}}")
	if strings.TrimSpace(out) != "berth/copy:v1" {
		t.Fatalf("images --filter reference=berth/*: %q", out)
	}
	out = e.d.Must("images", "--no-trunc", "--quiet")
	if strings.TrimSpace(out) != id+"\n"+id && strings.TrimSpace(out) != id {
		t.Fatalf("images -q --no-trunc: %q", out)
	}

	out = e.d.Must("history", "--no-trunc", "--format", "{{.ID}} {{.Size}}", "berth/copy:v1")
	if !strings.HasPrefix(out, id+" ") {
		t.Fatalf("history: %q", out)
	}

	// Removing one of two tags only untags; the last name deletes.
	out = e.d.Must("rmi", "berth/copy:v1")
	if strings.TrimSpace(out) != "Untagged: berth/copy:v1" {
		t.Fatalf("rmi of one tag: %q", out)
	}
	out = e.d.Must("rmi", e.ref)
	mustContain(t, "rmi of the last tag", out, "Untagged: "+e.ref, "Untagged: "+e.reg.Addr+"/busybox@sha256:", "Deleted: "+id)
	if out := e.d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images left after rmi: %q", out)
	}
}

func TestUnknownImageIsNotFound(t *testing.T) {
	e := newImageEnv(t)
	msg := e.d.Fail("rmi", "nosuchimage")
	mustContain(t, "rmi", msg, "No such image: nosuchimage:latest")
	msg = e.d.Fail("pull", e.reg.Addr+"/busybox:nosuchtag")
	mustContain(t, "pull of a missing tag", msg, "manifest for "+e.reg.Addr+"/busybox:nosuchtag not found")
	msg = e.d.Fail("pull", e.reg.Addr+"/nosuchrepo")
	mustContain(t, "pull of a missing repository", msg, "nosuchrepo")
	msg = e.d.Fail("tag", "nosuchimage", "x:y")
	mustContain(t, "tag", msg, "No such image: nosuchimage:latest")
}

func TestPullManifestListPicksLinuxAmd64(t *testing.T) {
	e := newImageEnv(t)
	amd := testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"arch": "amd64"}}, testkit.LayerTar(testkit.BusyboxEntries(t)))
	arm := testkit.ImageFromLayers(t, v1.Config{Labels: map[string]string{"arch": "arm64"}}, testkit.LayerTar([]testkit.TarEntry{{Name: "arm", Body: []byte("x")}}))
	ref := e.reg.Addr + "/multi:latest"
	testkit.PushIndex(t, ref, map[string]v1.Image{"linux/arm64": arm, "linux/amd64": amd})
	e.d.Must("pull", ref)
	if out := e.d.Must("image", "inspect", "--format", `{{.Config.Labels.arch}} {{.Architecture}}`, ref); strings.TrimSpace(out) != "amd64 amd64" {
		t.Fatalf("manifest list pull chose %q", out)
	}
	out := e.d.Must("pull", "--platform", "linux/arm64", ref)
	mustContain(t, "pull --platform linux/arm64", out, "Status: Downloaded newer image")
	if out := e.d.Must("image", "inspect", "--format", `{{.Config.Labels.arch}}`, ref); strings.TrimSpace(out) != "arm64" {
		t.Fatalf("pull --platform linux/arm64 gave %q", out)
	}
	msg := e.d.Fail("pull", "--platform", "linux/s390x", ref)
	mustContain(t, "pull of a missing platform", msg, "no matching manifest for linux/s390x in the manifest list entries")
}

func TestPushToAnotherRepository(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	target := e.reg.Addr + "/other/copy:v2"
	e.d.Must("tag", e.ref, target)
	out := e.d.Must("push", target)
	mustContain(t, "push", out, "The push refers to repository ["+e.reg.Addr+"/other/copy]", ": Pushed", "v2: digest: sha256:", "size: ")
	out = e.d.Must("push", target)
	mustContain(t, "second push", out, "Layer already exists")

	// What was pushed pulls back as the same image.
	id := e.d.Must("image", "inspect", "--format", "{{.Id}}", target)
	e.d.Must("rmi", e.ref, target)
	e.d.Must("pull", target)
	if got := e.d.Must("image", "inspect", "--format", "{{.Id}}", target); got != id {
		t.Fatalf("pushed and pulled back: %s, was %s", got, id)
	}
	msg := e.d.Fail("push", e.reg.Addr+"/never/tagged:x")
	mustContain(t, "push of a missing tag", msg, "An image does not exist locally with the tag: "+e.reg.Addr+"/never/tagged")
}

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("tag", e.ref, "berth/saved:one")
	id := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{.Id}}", e.ref))
	archive := filepath.Join(t.TempDir(), "images.tar")
	e.d.Must("save", "-o", archive, e.ref, "berth/saved:one")
	e.d.Must("rmi", e.ref, "berth/saved:one")

	out := e.d.Must("load", "-i", archive)
	mustContain(t, "load", out, "Loaded image: "+e.ref, "Loaded image: berth/saved:one")
	if got := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{.Id}}", "berth/saved:one")); got != id {
		t.Fatalf("loaded image ID %s, saved %s", got, id)
	}

	// The archive is an OCI layout too: without manifest.json it still loads.
	e.d.Must("rmi", "-f", id)
	ociOnly := filepath.Join(t.TempDir(), "oci.tar")
	rewriteTar(t, archive, ociOnly, func(name string) bool { return name != "manifest.json" })
	f, _ := os.Open(ociOnly)
	defer f.Close()
	r := e.d.Run(f, "load")
	if r.Code != 0 {
		t.Fatalf("load of an OCI layout: %s", r.Stderr)
	}
	mustContain(t, "load OCI layout", r.Stdout, "Loaded image: "+e.ref)

	// A legacy docker-archive (gzip layers, <id>.json config) as older
	// tools write it, then pushed: its layers are compressed for the registry.
	legacy := filepath.Join(t.TempDir(), "legacy.tar")
	lf, _ := os.Create(legacy)
	tag, _ := name.NewTag("berth/legacy:v1")
	img := testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"true"}}, testkit.LayerTar([]testkit.TarEntry{{Name: "hello", Body: []byte("hi")}}))
	if err := tarball.Write(tag, img, lf); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	out = e.d.Must("load", "-q", "-i", legacy)
	mustContain(t, "load legacy", out, "Loaded image: berth/legacy:v1")
	e.d.Must("tag", "berth/legacy:v1", e.reg.Addr+"/legacy:v1")
	e.d.Must("push", e.reg.Addr+"/legacy:v1")

	// A repository name saves all its tags.
	e.d.Must("tag", e.ref, "berth/saved:two")
	all := filepath.Join(t.TempDir(), "all.tar")
	e.d.Must("save", "-o", all, "berth/saved")
	e.d.Must("rmi", "berth/saved:one", "berth/saved:two")
	out = e.d.Must("load", "-i", all)
	mustContain(t, "load of a saved repository", out, "Loaded image: berth/saved:one", "Loaded image: berth/saved:two")

	// Saving an unknown image fails before any byte is written.
	msg := e.d.Fail("save", "-o", filepath.Join(t.TempDir(), "x.tar"), "nosuchimage")
	mustContain(t, "save of a missing image", msg, "No such image: nosuchimage:latest")
}

// rewriteTar copies the tar at src to dst, keeping the entries keep accepts.
func rewriteTar(t *testing.T, src, dst string, keep func(string) bool) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !keep(h.Name) {
			continue
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.Close()
}

func TestLoginAndPullFromAuthRegistry(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{Auth: true})
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	d := testkit.NewDocker(t, a.Host)
	ref := reg.Addr + "/private/busybox:latest"
	testkit.Push(t, ref, testkit.BusyboxImage(t), remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Pass}))

	msg := d.Fail("pull", ref)
	mustContain(t, "anonymous pull", msg, "pull access denied for "+reg.Addr+"/private/busybox")

	r := d.Run(strings.NewReader("wrong\n"), "login", "-u", reg.User, "--password-stdin", reg.Addr)
	if r.Code == 0 {
		t.Fatalf("login with a wrong password succeeded: %s", r.Stdout)
	}
	mustContain(t, "bad login", r.Stderr, "401")

	r = d.Run(strings.NewReader(reg.Pass+"\n"), "login", "-u", reg.User, "--password-stdin", reg.Addr)
	if r.Code != 0 {
		t.Fatalf("login: %s", r.Stderr)
	}
	mustContain(t, "login", r.Stdout, "Login Succeeded")
	out := d.Must("pull", ref)
	mustContain(t, "authenticated pull", out, "Status: Downloaded newer image for "+ref)
	d.Must("tag", ref, reg.Addr+"/private/pushed:v1")
	d.Must("push", reg.Addr+"/private/pushed:v1")
}

func TestAgentRestartKeepsImages(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	e.d.Must("tag", e.ref, "berth/keep:me")
	images := func() string {
		lines := strings.Split(strings.TrimSpace(e.d.Must("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}")), "\n")
		sort.Strings(lines) // the CLI orders tags of one image as it likes
		return strings.Join(lines, "\n")
	}
	before := images()
	e.agent.Stop()
	e.agent.Start()
	if after := images(); after != before {
		t.Fatalf("images after a restart:\n%s\nbefore:\n%s", after, before)
	}
	e.agent.Kill() // a crash, not a clean stop
	e.agent.Start()
	if after := images(); after != before {
		t.Fatalf("images after a crash:\n%s\nbefore:\n%s", after, before)
	}
	out := e.d.Must("pull", e.ref)
	mustContain(t, "pull after restart", out, "Image is up to date")
}

// Hostile layers are refused at pull with an error naming the entry, and
// nothing lands outside the engine's root.
func TestPullRefusesHostileLayers(t *testing.T) {
	e := newImageEnv(t)
	outside := t.TempDir()
	up := strings.Repeat("../", 30)
	cases := []struct {
		name    string
		entries []testkit.TarEntry
		msg     string
		target  string // must not exist afterwards
	}{
		{"dotdot", []testkit.TarEntry{{Name: up + strings.TrimPrefix(outside, "/") + "/dotdot", Body: []byte("pwned")}},
			`path contains ".."`, "dotdot"},
		{"symlink-out-then-write", []testkit.TarEntry{{Name: "evil", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "evil/through", Body: []byte("pwned")}}, `crosses symlink "evil"`, "through"},
		{"relative-symlink-out", []testkit.TarEntry{{Name: "up", Type: tar.TypeSymlink, Linkname: up + strings.TrimPrefix(outside, "/")}},
			"leads out of the root", ""},
		{"hardlink-out", []testkit.TarEntry{{Name: "passwd", Type: tar.TypeLink, Linkname: up + "etc/passwd"}},
			"leads out of the root", ""},
		{"device", []testkit.TarEntry{{Name: "dev/", Type: tar.TypeDir}, {Name: "dev/mem", Type: tar.TypeChar}},
			"device node refused", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := e.reg.Addr + "/hostile/" + c.name + ":latest"
			base := testkit.LayerTar(testkit.BusyboxEntries(t))
			testkit.Push(t, ref, testkit.ImageFromLayers(t, v1.Config{}, base, testkit.LayerTar(c.entries)))
			msg := e.d.Fail("pull", ref)
			mustContain(t, "hostile pull", msg, "failed to register layer", c.msg)
			if c.target != "" {
				if _, err := os.Lstat(filepath.Join(outside, c.target)); err == nil {
					t.Fatalf("hostile layer wrote %s outside the root", c.target)
				}
			}
			if out := e.d.Must("images", "-q", "--filter", "reference="+e.reg.Addr+"/hostile/*"); strings.TrimSpace(out) != "" {
				t.Fatalf("hostile image listed: %q", out)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("files appeared outside the root: %v", ents)
	}
	// The engine keeps serving, and the good base layer it unpacked is usable.
	e.d.Must("pull", e.ref)
}

func TestLoadRefusesHostileArchive(t *testing.T) {
	e := newImageEnv(t)
	escape := "berth-escape-" + filepath.Base(t.TempDir())
	bad := testkit.LayerTar([]testkit.TarEntry{{Name: "../../../../../../../../tmp/" + escape, Body: []byte("x")}, {Name: "manifest.json", Body: []byte("[]")}})
	r := e.d.Run(bytes.NewReader(bad), "load")
	if r.Code == 0 {
		t.Fatal("hostile archive loaded")
	}
	mustContain(t, "hostile archive", r.Stderr, "invalid archive entry", `".."`)
	if _, err := os.Stat("/tmp/" + escape); err == nil {
		os.Remove("/tmp/" + escape)
		t.Fatal("archive entry written outside the engine")
	}
	// A well-formed archive whose layer is hostile.
	var buf bytes.Buffer
	tag, _ := name.NewTag("berth/hostile-archive:v1")
	img := testkit.ImageFromLayers(t, v1.Config{}, testkit.LayerTar([]testkit.TarEntry{{Name: "s", Type: tar.TypeSymlink, Linkname: "/"}, {Name: "s/tmp/" + escape, Body: []byte("x")}}))
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	r = e.d.Run(&buf, "load")
	if r.Code == 0 {
		t.Fatal("archive with a hostile layer loaded")
	}
	mustContain(t, "hostile layer in archive", r.Stderr, `crosses symlink "s"`)
	if _, err := os.Stat("/tmp/" + escape); err == nil {
		os.Remove("/tmp/" + escape)
		t.Fatal("layer entry written outside the engine")
	}
	if out := e.d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("images after refused loads: %q", out)
	}
}

// The bundled hello image (make hello) loads, is what it claims, and greets
// when run.
func TestHelloImage(t *testing.T) {
	archive := helloArchive(t)
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	d := testkit.NewDocker(t, a.Host)
	out := d.Must("load", "-i", archive)
	mustContain(t, "load hello", out, "Loaded image: berth/hello:latest")
	out = d.Must("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}", "berth/hello")
	if got := strings.TrimSpace(out); got != `linux/amd64 ["cat","/usr/share/berth/hello.txt"]` {
		t.Fatalf("berth/hello: %s", got)
	}
	r := d.Run(nil, "run", "--rm", "berth/hello")
	if r.Code != 0 {
		t.Fatalf("docker run --rm berth/hello: exit %d: %s", r.Code, r.Stderr)
	}
	mustContain(t, "hello", r.Stdout, "Hello from Berth!")
}

// rmi follows dockerd's rules for images containers use.
func TestRemoveImageInUse(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	id := strings.TrimSpace(e.d.Must("image", "inspect", "--format", "{{.Id}}", e.ref))
	short := strings.TrimPrefix(id, "sha256:")[:12]
	stopped := strings.TrimSpace(e.d.Must("create", e.ref, "true"))

	msg := e.d.Fail("rmi", e.ref)
	mustContain(t, "rmi of the only tag of an image in use", msg,
		`conflict: unable to remove repository reference "`+e.ref+`" (must force) - container `+stopped[:12]+` is using its referenced image `+short)
	msg = e.d.Fail("rmi", short)
	mustContain(t, "rmi by ID of an image in use", msg, "conflict: unable to delete "+short+" (must be forced) - image is being used by stopped container "+stopped[:12])

	// With a second tag, removing one is only an untag.
	e.d.Must("tag", e.ref, "berth/second:tag")
	if out := e.d.Must("rmi", "berth/second:tag"); strings.TrimSpace(out) != "Untagged: berth/second:tag" {
		t.Fatalf("rmi of a second tag: %q", out)
	}

	running := strings.TrimSpace(e.d.Must("run", "-d", e.ref, "sleep", "60"))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", running) })
	msg = e.d.Fail("rmi", "-f", short)
	mustContain(t, "rmi -f of an image a running container uses", msg,
		"conflict: unable to delete "+short+" (cannot be forced) - image is being used by running container "+running[:12])
	// Forcing the name away leaves the image, dangling, for the container.
	out := e.d.Must("rmi", "-f", e.ref)
	mustContain(t, "rmi -f of the name", out, "Untagged: "+e.ref)
	if strings.Contains(out, "Deleted:") {
		t.Fatalf("image deleted under a running container:\n%s", out)
	}
	if got := strings.TrimSpace(e.d.Must("images", "-q", "--filter", "dangling=true")); got != short {
		t.Fatalf("dangling images: %q, want %s", got, short)
	}
}

// Malformed image requests get a 400 (or 404) with a message, and the
// engine keeps serving.
func TestImageAPIRejectsMalformedRequests(t *testing.T) {
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	c := a.HTTPClient()
	cases := []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"POST", "/images/create", "", 400, "fromImage"},
		{"POST", "/images/create?fromImage=UPPER/Case", "", 400, "invalid reference format"},
		{"POST", "/images/create?fromImage=busybox&tag=b@d", "", 400, "invalid tag"},
		{"POST", "/images/create?fromImage=busybox&platform=nonsense", "", 400, "invalid platform"},
		{"POST", "/images/create?fromSrc=-", "this is not a tar archive, just text that goes on long enough", 400, "not a tar archive"},
		{"POST", "/images/create?fromSrc=ftp://example.invalid/x.tar", "", 400, "neither - (the request body) nor an http(s) URL"},
		{"GET", "/images/json?filters={bad", "", 400, "invalid filters"},
		{"GET", `/images/json?filters={"nope":{"x":true}}`, "", 400, "invalid filter 'nope'"},
		{"GET", `/images/json?filters={"dangling":{"maybe":true}}`, "", 400, "dangling=maybe"},
		{"GET", "/images/nosuch/json", "", 404, "No such image: nosuch:latest"},
		{"GET", "/images/nosuch/history", "", 404, "No such image"},
		{"POST", "/images/nosuch/tag?repo=x", "", 404, "No such image"},
		{"POST", "/images/nosuch/tag", "", 400, "repo"},
		{"DELETE", "/images/nosuch", "", 404, "No such image: nosuch:latest"},
		{"POST", "/images/nosuch/push", "", 404, "An image does not exist locally"},
		{"GET", "/images/get?names=nosuch", "", 404, "No such image"},
		{"POST", "/images/load", "this is not a tar archive, just text that goes on long enough", 400, "invalid archive"},
		{"POST", "/images/load", "", 400, "invalid archive"},
		{"POST", "/auth", "{not json", 400, "invalid JSON"},
		{"POST", `/images/prune?filters={"until":{"yesterday-ish":true}}`, "", 400, "invalid timestamp"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
		if tc.path == "/auth" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.msg)
		}
	}
	resp, err := c.Get("http://berth/_ping")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("engine stopped serving: %v", err)
	}
}

func TestImageFiltersPruneAndEvents(t *testing.T) {
	e := newImageEnv(t)
	since := time.Now().Add(-time.Second).Unix()
	old := testkit.ImageFromLayers(t, v1.Config{Labels: map[string]string{"tier": "old"}}, testkit.LayerTar([]testkit.TarEntry{{Name: "old", Body: []byte("1")}}))
	testkit.Push(t, e.reg.Addr+"/old:1", old)
	e.d.Must("pull", e.ref)
	e.d.Must("pull", e.reg.Addr+"/old:1")
	e.d.Must("tag", e.reg.Addr+"/old:1", "berth/other:x")
	list := func(args ...string) string {
		return strings.TrimSpace(e.d.Must(append([]string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, args...)...))
	}
	if got := list("--filter", "label=tier=old", "--filter", "reference=berth/*"); got != "berth/other:x" {
		t.Fatalf("label and reference filters: %q", got)
	}
	// busybox (created 2023-11-14) is older than the image made just now? No:
	// both test images carry the same fixed date, so before/since select none.
	if got := list("--filter", "before="+e.ref); got != "" {
		t.Fatalf("before filter: %q", got)
	}
	// Untagging the last name leaves a dangling image; prune removes it.
	e.d.Must("rmi", e.reg.Addr+"/old:1", "berth/other:x")
	if got := list("--filter", "dangling=true"); got != "" {
		t.Fatalf("rmi of every name should delete the image: dangling %q", got)
	}
	e.d.Must("tag", e.ref, "berth/temp:1")
	out := e.d.Must("image", "prune", "-a", "-f", "--filter", "label=nothing")
	mustContain(t, "prune with a label nothing has", out, "Total reclaimed space: 0B")
	out = e.d.Must("image", "prune", "-a", "-f")
	mustContain(t, "prune -a", out, "untagged: berth/temp:1", "deleted: sha256:", "Total reclaimed space: 1.98")
	if got := list(); got != "" {
		t.Fatalf("images after prune -a: %q", got)
	}

	ev := e.d.Must("events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	mustContain(t, "image events", ev, "pull "+e.reg.Addr+"/busybox\n", "tag berth/other:x", "untag sha256:", "delete", "prune") // untag names the image ID, as dockerd
}

// Concurrent pulls of images sharing layers each succeed, and each layer is
// stored once.
func TestConcurrentPullsShareLayers(t *testing.T) {
	e := newImageEnv(t)
	base := testkit.LayerTar(testkit.BusyboxEntries(t))
	for _, n := range []string{"one", "two"} {
		top := testkit.LayerTar([]testkit.TarEntry{{Name: n, Body: bytes.Repeat([]byte(n), 1<<20)}})
		testkit.Push(t, e.reg.Addr+"/shared/"+n+":latest", testkit.ImageFromLayers(t, v1.Config{}, base, top))
	}
	refs := []string{e.ref, e.ref, e.reg.Addr + "/shared/one", e.reg.Addr + "/shared/two", e.reg.Addr + "/shared/one"}
	errs := make(chan string, len(refs))
	for _, r := range refs {
		go func() {
			res := e.d.Run(nil, "pull", r)
			if res.Code != 0 {
				errs <- r + ": " + res.Stderr
				return
			}
			errs <- ""
		}()
	}
	for range refs {
		if msg := <-errs; msg != "" {
			t.Errorf("concurrent pull %s", msg)
		}
	}
	if n := len(strings.Fields(e.d.Must("images", "-q"))); n != 3 {
		t.Fatalf("%d images after the pulls, want 3", n)
	}
	// busybox's layer (shared by all three) is unpacked once: 1 + 2 tops.
	layers, _ := os.ReadDir(filepath.Join(e.agent.Root, "snapshot", "layers"))
	if len(layers) != 3 {
		t.Fatalf("%d unpacked layers, want 3: %v", len(layers), layers)
	}
}

// A pull abandoned by its client stops, and leaves no partial content.
func TestCancelledPullLeavesNothing(t *testing.T) {
	e := newImageEnv(t)
	var layers [][]byte
	for i := range 3 {
		data := make([]byte, 16<<20)
		rand.Read(data) // incompressible: the pull takes a while
		layers = append(layers, testkit.LayerTar([]testkit.TarEntry{{Name: fmt.Sprint("big", i), Body: data}}))
	}
	ref := e.reg.Addr + "/big:latest"
	testkit.Push(t, ref, testkit.ImageFromLayers(t, v1.Config{}, layers...))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://berth/images/create?fromImage="+e.reg.Addr+"/big&tag=latest", nil)
	resp, err := e.agent.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	resp.Body.Read(buf) // the stream has started
	cancel()
	resp.Body.Close()
	// The engine notices, cleans up, and serves on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tmp, _ := os.ReadDir(filepath.Join(e.agent.Root, "image", "blobs", "tmp"))
		snaps, _ := filepath.Glob(filepath.Join(e.agent.Root, "snapshot", "layers", ".tmp-*"))
		if len(tmp) == 0 && len(snaps) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partial content left after a cancelled pull: %v %v", tmp, snaps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := e.d.Must("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a cancelled pull left an image: %q", out)
	}
	out := e.d.Must("pull", ref)
	mustContain(t, "pull after a cancelled one", out, "Status: Downloaded newer image")
}

// helloArchive is bin/hello.tar as `make test` builds it, or made here with
// the same recipe when the binaries came from `make build` alone.
func helloArchive(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		if p := filepath.Join(dir, "hello.tar"); fileExists(p) {
			return p
		}
		p := filepath.Join(t.TempDir(), "hello.tar")
		cmd := exec.Command("go", "run", "./build/hello", "-out", p)
		cmd.Dir = testkit.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build/hello: %v\n%s", err, out)
		}
		return p
	}
	return testkit.Binary(t, "hello.tar")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// docker commit turns a container's changes into an image that runs,
// pushes and pulls like any other.
func TestCommitContainer(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	cid := strings.TrimSpace(e.d.Must("run", "-d", e.ref, "sh", "-c", "echo committed > /made && rm /etc/group && sleep 60"))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", cid) })
	deadline := time.Now().Add(10 * time.Second)
	for e.d.Run(nil, "exec", cid, "test", "-f", "/made").Code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the container did not make its file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := e.d.Must("commit", "-m", "made a file", "-a", "tester", "-c", `CMD ["cat", "/made"]`, "-c", "ENV STEP=1", cid, "berth/committed:v1")
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("docker commit printed %q", out)
	}
	if st := e.d.Must("inspect", "--format", "{{.State.Status}}", cid); strings.TrimSpace(st) != "running" {
		t.Fatalf("container after commit: %s", st)
	}
	if out := e.d.Must("run", "--rm", "berth/committed:v1"); strings.TrimSpace(out) != "committed" {
		t.Fatalf("committed image printed %q", out)
	}
	if r := e.d.Run(nil, "run", "--rm", "berth/committed:v1", "ls", "/etc/group"); r.Code == 0 {
		t.Fatal("a file deleted in the container is back in the committed image")
	}
	out = e.d.Must("image", "inspect", "--format", `{{.Author}} {{index .Config.Env 1}} {{len .RootFS.Layers}}`, "berth/committed:v1")
	if strings.TrimSpace(out) != "tester STEP=1 2" {
		t.Fatalf("committed image: %q", out)
	}
	mustContain(t, "history", e.d.Must("history", "berth/committed:v1"), "made a file")
	mustContain(t, "events", e.d.Must("events", "--since", "0", "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=commit", "--format", "{{.Actor.ID}}"), cid)

	// Its layer (a plain tar) is compressed on push; the image pulls back.
	target := e.reg.Addr + "/committed:v1"
	e.d.Must("tag", "berth/committed:v1", target)
	e.d.Must("push", target)
	e.d.Must("rm", "-f", cid)
	e.d.Must("rmi", "berth/committed:v1", target)
	e.d.Must("pull", target)
	if out := e.d.Must("run", "--rm", target); strings.TrimSpace(out) != "committed" {
		t.Fatalf("pulled back, the committed image printed %q", out)
	}
	stopped := strings.TrimSpace(e.d.Must("create", target))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", stopped) })
	msg := e.d.Fail("commit", "-c", "RUN rm -rf /", stopped)
	mustContain(t, "commit with a RUN change", msg, "RUN is not a valid change command")
	msg = e.d.Fail("commit", "nosuchcontainer")
	mustContain(t, "commit of a missing container", msg, "No such container")
}
