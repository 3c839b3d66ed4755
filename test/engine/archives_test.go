package engine_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/berth-dev/berth/internal/testkit"
)

// compressors are the archive compressions the Engine API takes, each with
// a real encoder: Go's gzip, ulikunitz's xz, klauspost's zstd and Debian's
// bzip2 (the standard library has no bzip2 writer).
var compressors = []struct {
	name string
	do   func(t *testing.T, b []byte) []byte
}{
	{"plain", func(t *testing.T, b []byte) []byte { return b }},
	{"gzip", func(t *testing.T, b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}},
	{"bzip2", func(t *testing.T, b []byte) []byte {
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2 (Debian's bzip2 package): %v", err)
		}
		return out
	}},
	{"xz", func(t *testing.T, b []byte) []byte {
		var out bytes.Buffer
		w, err := xz.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
		return out.Bytes()
	}},
	{"zstd", func(t *testing.T, b []byte) []byte {
		var out bytes.Buffer
		w, _ := zstd.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}},
}

// api sends one raw Engine API request to the agent and returns the status
// and body.
func api(t *testing.T, a *testkit.Agent, method, path string, body []byte, ct string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := a.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestArchivesInEveryCompression sends each compression to every endpoint
// that takes an archive: PUT /containers/{id}/archive, /images/load, the
// classic /build's context and docker import (fromSrc=-), as dockerd
// detects them, from the stream.
func TestArchivesInEveryCompression(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "-d", "--name", "box", e.ref, "sleep", "600")
	saved := e.d.Must("save", e.ref)
	rootfs := testkit.LayerTar(append(testkit.BusyboxEntries(t), testkit.TarEntry{Name: "imported", Body: []byte("rootfs\n")}))
	for _, c := range compressors {
		t.Run(c.name, func(t *testing.T) {
			marker := "copied-" + c.name
			// docker cp's endpoint, as an API client sends it.
			tarball := c.do(t, testkit.LayerTar([]testkit.TarEntry{{Name: marker, Body: []byte(c.name + "\n")}}))
			if code, body := api(t, e.agent, http.MethodPut, "/containers/box/archive?path=/tmp", tarball, "application/x-tar"); code != http.StatusOK {
				t.Fatalf("PUT archive: %d %s", code, body)
			}
			if out := e.d.Must("exec", "box", "cat", "/tmp/"+marker); out != c.name+"\n" {
				t.Fatalf("copied file reads %q", out)
			}

			// docker load of a compressed docker save.
			e.d.Must("rmi", "-f", e.ref) // untagged (box still uses it)
			code, body := api(t, e.agent, http.MethodPost, "/images/load?quiet=1", c.do(t, []byte(saved)), "application/x-tar")
			if code != http.StatusOK || !strings.Contains(body, "Loaded image: "+e.ref) {
				t.Fatalf("load: %d %s", code, body)
			}
			if out := e.d.Must("run", "--rm", e.ref, "echo", "loaded"); out != "loaded\n" {
				t.Fatalf("loaded image runs: %q", out)
			}

			// The classic builder's context.
			ctxTar := c.do(t, testkit.LayerTar([]testkit.TarEntry{
				{Name: "Dockerfile", Body: []byte("FROM " + e.ref + "\nCOPY hello.txt /hello.txt\n")},
				{Name: "hello.txt", Body: []byte("built from " + c.name + "\n")},
			}))
			built := "built-" + c.name
			code, body = api(t, e.agent, http.MethodPost, "/build?version=1&t="+built, ctxTar, "application/x-tar")
			if code != http.StatusOK || strings.Contains(body, "errorDetail") {
				t.Fatalf("build: %d %s", code, body)
			}
			if out := e.d.Must("run", "--rm", built, "cat", "/hello.txt"); out != "built from "+c.name+"\n" {
				t.Fatalf("built image: %q", out)
			}

			// docker import from the request body.
			imported := "imported-" + c.name
			q := url.Values{"fromSrc": {"-"}, "repo": {imported}, "tag": {"v1"}, "changes": {`CMD ["cat", "/imported"]`}}
			code, body = api(t, e.agent, http.MethodPost, "/images/create?"+q.Encode(), c.do(t, rootfs), "application/x-tar")
			if code != http.StatusOK || !strings.Contains(body, `"status":"sha256:`) {
				t.Fatalf("import: %d %s", code, body)
			}
			if out := e.d.Must("run", "--rm", imported+":v1"); out != "rootfs\n" {
				t.Fatalf("imported image runs: %q", out)
			}
		})
	}
	// A stream that claims a compression and is not is refused clearly.
	code, body := api(t, e.agent, http.MethodPut, "/containers/box/archive?path=/tmp", []byte{0x1f, 0x8b, 0, 0}, "application/x-tar")
	if code != http.StatusBadRequest || !strings.Contains(body, "gzip") {
		t.Fatalf("broken gzip: %d %s", code, body)
	}
}
