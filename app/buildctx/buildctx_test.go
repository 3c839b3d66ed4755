package buildctx

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

func TestTarIgnoresAndKeepsLinks(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("secret*\nnode_modules\n!node_modules/keep.txt\nDockerfile\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "app.sh"), []byte("echo hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "secret.key"), []byte("no"), 0o600))
	must(os.MkdirAll(filepath.Join(dir, "node_modules", "x"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "node_modules", "x", "big.js"), []byte("no"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "node_modules", "keep.txt"), []byte("yes"), 0o644))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "passwd-link")))

	rc, _, err := Tar(dir, "")
	must(err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(err)
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body)
		if h.Typeflag == tar.TypeSymlink {
			got[h.Name] = "-> " + h.Linkname
		}
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{".dockerignore", "Dockerfile", "app.sh", "node_modules/keep.txt", "passwd-link"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("context holds %q, want %q", names, want)
	}
	if got["passwd-link"] != "-> /etc/passwd" || got["app.sh"] != "echo hi\n" {
		t.Fatalf("contents: %q", got)
	}
	if _, _, err := Tar(filepath.Join(dir, "app.sh"), ""); err == nil {
		t.Fatal("a file as the build folder: want an error")
	}
}
