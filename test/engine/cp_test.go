package engine_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// tree lists a directory as "path type content/target" lines.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			lines = append(lines, rel+" -> "+l)
		case fi.IsDir():
			lines = append(lines, rel+"/ "+fi.Mode().Perm().String())
		default:
			b, _ := os.ReadFile(p)
			lines = append(lines, rel+" "+fi.Mode().Perm().String()+" "+string(b))
		}
		return nil
	})
	return strings.Join(lines, "\n")
}

func TestCpRoundTripsATreeWithSymlinks(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	src := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "deeper", "z"), []byte("zed"), 0o600)
	os.Symlink("a.txt", filepath.Join(src, "rel-link"))
	os.Symlink("/etc/passwd", filepath.Join(src, "abs-link"))
	os.Symlink("../a.txt", filepath.Join(src, "sub", "up-link"))

	e.d.Must("run", "-d", "--name", "box", e.ref, "sleep", "60")
	e.d.Must("cp", src, "box:/tmp/")
	if out := e.d.Must("exec", "box", "sh", "-c", "cat /tmp/data/a.txt; echo; readlink /tmp/data/rel-link; readlink /tmp/data/abs-link; stat -c %u /tmp/data/a.txt"); out != "alpha\na.txt\n/etc/passwd\n0\n" {
		t.Fatalf("in the container: %q", out)
	}
	out := filepath.Join(t.TempDir(), "back")
	e.d.Must("cp", "box:/tmp/data", out)
	if got, want := tree(t, out), tree(t, src); got != want {
		t.Fatalf("round trip differs:\n%s\nwant:\n%s", got, want)
	}
	// A single file, from a stopped container, and the stat header.
	e.d.Must("stop", "-t", "0", "box")
	one := filepath.Join(t.TempDir(), "one")
	e.d.Must("cp", "box:/tmp/data/sub/deeper/z", one)
	if b, _ := os.ReadFile(one); string(b) != "zed" {
		t.Fatalf("file from a stopped container: %q", b)
	}
	req, _ := http.NewRequest(http.MethodHead, "http://berth/containers/box/archive?path=/tmp/data/rel-link", nil)
	resp, err := e.agent.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var st struct {
		Name, LinkTarget string
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.Header.Get("X-Docker-Container-Path-Stat"))
	if json.Unmarshal(raw, &st); resp.StatusCode != 200 || st.Name != "rel-link" || st.LinkTarget != "/tmp/data/a.txt" { // resolved in the container, as dockerd reports it
		t.Fatalf("stat header: %d %+v", resp.StatusCode, st)
	}
	msg := e.d.Fail("cp", "box:/no/such/file", t.TempDir())
	mustContain(t, "missing path", msg, "Could not find the file /no/such/file in container box")
}

func TestCpRefusesHostileArchives(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "-d", "--name", "target", e.ref, "sleep", "60")
	outside := filepath.Join(t.TempDir(), "outside")
	os.MkdirAll(outside, 0o755)
	put := func(entries []testkit.TarEntry) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, "http://berth/containers/target/archive?path=/tmp", bytes.NewReader(testkit.LayerTar(entries)))
		resp, err := e.agent.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for name, entries := range map[string][]testkit.TarEntry{
		"dotdot":          {{Name: "../../../../" + outside + "/x", Body: []byte("pwned")}},
		"through symlink": {{Name: "esc", Type: '2', Linkname: outside}, {Name: "esc/x", Body: []byte("pwned")}},
		"device":          {{Name: "dev", Type: '3'}},
		"whiteout":        {{Name: ".wh.passwd"}},
	} {
		code, body := put(entries)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", name, code, body)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a hostile archive wrote outside the container: %v", ents)
	}
	// A directory is not replaced by a file.
	code, body := put([]testkit.TarEntry{{Name: "etc", Body: []byte("x")}})
	if code != http.StatusOK {
		// /tmp/etc does not exist: this one is fine
		t.Fatalf("plain file: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://berth/containers/target/archive?path=/", bytes.NewReader(testkit.LayerTar([]testkit.TarEntry{{Name: "etc", Body: []byte("x")}})))
	resp, err := e.agent.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("file over /etc: %d", resp.StatusCode)
	}
	if out := e.d.Must("exec", "target", "cat", "/etc/passwd"); !strings.HasPrefix(out, "root:") {
		t.Fatalf("/etc damaged: %q", out)
	}
}
