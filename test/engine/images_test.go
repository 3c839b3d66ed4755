package engine_test

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
