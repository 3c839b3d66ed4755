package engine_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

func TestNamedVolumeOutlivesAndIsShared(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("volume", "create", "--label", "app=db", "data")
	e.d.Must("run", "--rm", "-v", "data:/data", e.ref, "sh", "-c", "echo kept > /data/f")
	if out := e.d.Must("run", "--rm", "-v", "data:/data", e.ref, "cat", "/data/f"); out != "kept\n" {
		t.Fatalf("named volume after its container: %q", out)
	}
	// Two containers at once see each other's writes.
	e.d.Must("run", "-d", "--name", "va", "--mount", "type=volume,source=data,target=/d", e.ref, "sleep", "60")
	e.d.Must("run", "--rm", "-v", "data:/d", e.ref, "sh", "-c", "echo shared > /d/g")
	if out := e.d.Must("exec", "va", "cat", "/d/g"); out != "shared\n" {
		t.Fatalf("shared volume: %q", out)
	}
	msg := e.d.Fail("volume", "rm", "data")
	mustContain(t, "volume rm in use", msg, "volume is in use")
	var vols []map[string]any
	json.Unmarshal([]byte(e.d.Must("volume", "inspect", "data")), &vols)
	if len(vols) != 1 || field(vols[0], "Labels", "app") != "db" || field(vols[0], "Driver") != "local" {
		t.Fatalf("volume inspect: %v", vols)
	}
	mustContain(t, "volume ls", e.d.Must("volume", "ls", "--filter", "label=app=db", "-q"), "data")
	mounts := field(inspect(t, e.d, "va"), "Mounts").([]any)
	if len(mounts) != 1 || field(mounts[0].(map[string]any), "Name") != "data" || field(mounts[0].(map[string]any), "Destination") != "/d" {
		t.Fatalf("inspect Mounts: %v", mounts)
	}
	e.d.Must("rm", "-f", "va")
	e.d.Must("volume", "rm", "data")
	msg = e.d.Fail("volume", "inspect", "data")
	mustContain(t, "removed volume", msg, "no such volume")
}

func TestAnonymousVolumeGetsImageContent(t *testing.T) {
	e := newImageEnv(t)
	ref := e.reg.Addr + "/withvolume:latest"
	testkit.Push(t, ref, testkit.ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/var/www": {}}},
		testkit.LayerTar(testkit.BusyboxEntries(t))))
	e.d.Must("pull", "-q", ref)
	e.d.Must("run", "--name", "keep", ref, "cat", "/var/www/index.html")
	if out := e.d.Must("logs", "keep"); out != testPage {
		t.Fatalf("image content in the anonymous volume: %q", out)
	}
	name := field(field(inspect(t, e.d, "keep"), "Mounts").([]any)[0].(map[string]any), "Name").(string)
	if len(name) != 64 {
		t.Fatalf("anonymous volume name %q", name)
	}
	e.d.Must("rm", "-v", "keep")
	if out := e.d.Must("volume", "ls", "-q"); strings.Contains(out, name) {
		t.Fatalf("rm -v left the anonymous volume: %s", out)
	}
	// --rm removes them too; a named volume at the same path keeps its data.
	e.d.Must("run", "--rm", ref, "true")
	if out := e.d.Must("volume", "ls", "-q"); out != "" {
		t.Fatalf("--rm left volumes: %q", out)
	}
	e.d.Must("run", "--name", "kept", ref, "true")
	e.d.Must("volume", "prune", "-f") // the volume is in use by the stopped container
	if out := e.d.Must("volume", "ls", "-q"); len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("volume prune removed a volume in use: %q", out)
	}
	e.d.Must("rm", "kept")
	e.d.Must("volume", "prune", "-f")
	if out := e.d.Must("volume", "ls", "-q"); out != "" {
		t.Fatalf("volume prune left: %q", out)
	}
}

func TestBindMountsAndTmpfs(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in"), []byte("from host\n"), 0o644)
	r := e.d.Run(nil, "run", "--rm", "-v", dir+":/mnt:ro", e.ref, "sh", "-c", "cat /mnt/in; touch /mnt/x")
	if r.Code == 0 || r.Stdout != "from host\n" || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Fatalf("read-only bind: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	// A file given to -v (as `-v /var/run/docker.sock:…` is) is bound as a
	// file, not taken for a directory to create.
	if out := e.d.Must("run", "--rm", "-v", filepath.Join(dir, "in")+":/etc/in.txt:ro", e.ref, "cat", "/etc/in.txt"); out != "from host\n" {
		t.Fatalf("file bind: %q", out)
	}
	e.d.Must("run", "--rm", "--mount", "type=bind,source="+dir+",target=/mnt", e.ref, "sh", "-c", "echo written > /mnt/out")
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "written\n" {
		t.Fatalf("rw bind: %q", b)
	}
	msg := e.d.Fail("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/mnt", e.ref, "true")
	mustContain(t, "missing bind source", msg, "bind source path does not exist: /no/such/dir")
	out := e.d.Must("run", "--rm", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", e.ref, "grep", "/scratch", "/proc/mounts")
	mustContain(t, "tmpfs mount", out, "tmpfs /scratch tmpfs", "size=1024k")
	msg = e.d.Fail("run", "--rm", "-v", "bad/name:/x", e.ref, "true")
	mustContain(t, "bad volume name", msg, "invalid characters for a local volume name")
}
