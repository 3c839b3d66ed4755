//go:build linux

package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarBytes(t testing.TB, entries []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

// jail is a directory holding only the context directory, so anything
// written outside the context shows up as a sibling.
func jail(t testing.TB) (parent, dir string) {
	parent = t.TempDir()
	dir = filepath.Join(parent, "ctx")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return parent, dir
}

func onlyChild(t testing.TB, parent string) {
	des, _ := os.ReadDir(parent)
	if len(des) != 1 || des[0].Name() != "ctx" {
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Fatalf("written outside the context: %v", names)
	}
}

func TestUnpackContextRefusesHostileEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		msg     string
	}{
		{"dotdot", []entry{{name: "../evil", body: "x"}}, "path escapes the build context"},
		{"nested dotdot", []entry{{name: "a/b/../../../evil", body: "x"}}, "path escapes the build context"},
		{"absolute", []entry{{name: "/evil", body: "x"}}, "absolute path"},
		{"write through symlink", []entry{{name: "l", link: "..", typ: tar.TypeSymlink}, {name: "l/evil", body: "x"}}, "l is not a directory"},
		{"symlink then dir", []entry{{name: "l", link: "/", typ: tar.TypeSymlink}, {name: "l/etc/", typ: tar.TypeDir}}, "l is not a directory"},
		{"hardlink out", []entry{{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}}, "not a file of the build context"},
		{"hardlink to symlink", []entry{{name: "l", link: "/etc/passwd", typ: tar.TypeSymlink}, {name: "h", link: "l", typ: tar.TypeLink}}, "not a file of the build context"},
		{"char device", []entry{{name: "c", typ: tar.TypeChar}}, "special files"},
		{"fifo", []entry{{name: "f", typ: tar.TypeFifo}}, "special files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, dir := jail(t)
			_, err := unpackContext(bytes.NewReader(tarBytes(t, tc.entries)), dir)
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want InvalidArgument with %q", err, tc.msg)
			}
			onlyChild(t, parent)
		})
	}
}

func TestUnpackContextIndex(t *testing.T) {
	_, dir := jail(t)
	bc, err := unpackContext(bytes.NewReader(tarBytes(t, []entry{
		{name: "Dockerfile", body: "FROM scratch"},
		{name: "src/a.txt", body: "a", mode: 0o755},
		{name: "src/link", link: "a.txt", typ: tar.TypeSymlink},
		{name: "hard", link: "src/a.txt", typ: tar.TypeLink},
		{name: "src/a.txt", body: "replaced"},
		{name: "gone/x", body: "x"},
		{name: "gone", body: "now a file"},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range bc.paths() {
		paths = append(paths, p)
	}
	if got := strings.Join(paths, ","); got != ",Dockerfile,gone,hard,src,src/a.txt,src/link" {
		t.Fatalf("paths: %s", got)
	}
	if e := bc.entries["src/a.txt"]; e.mode != 0o644 || e.size != 8 {
		t.Fatalf("replaced file: %+v", e)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hard")); string(b) != "a" {
		t.Fatalf("hard link copy: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gone")); string(b) != "now a file" {
		t.Fatalf("file over dir: %q", b)
	}
	if bc.entries["hard"].digest != bc.entries["Dockerfile"].digest && bc.entries["hard"].size != 1 {
		t.Fatalf("hard: %+v", bc.entries["hard"])
	}
	// Gzip-compressed contexts are read too; garbage is not.
	if _, err := unpackContext(strings.NewReader("FROM scratch\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a tar archive") {
		t.Fatalf("plain text context: %v", err)
	}
}

func TestResolveStaysInContext(t *testing.T) {
	_, dir := jail(t)
	bc, err := unpackContext(bytes.NewReader(tarBytes(t, []entry{
		{name: "real/f", body: "x"},
		{name: "in", link: "real", typ: tar.TypeSymlink},
		{name: "chain", link: "in/f", typ: tar.TypeSymlink},
		{name: "up", link: "real/../real/f", typ: tar.TypeSymlink},
		{name: "abs", link: "/etc/passwd", typ: tar.TypeSymlink},
		{name: "out", link: "../../etc/passwd", typ: tar.TypeSymlink},
		{name: "real/back", link: "../..", typ: tar.TypeSymlink},
		{name: "loop", link: "loop", typ: tar.TypeSymlink},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"chain": "real/f", "in/f": "real/f", "up": "real/f", "real": "real"} {
		if got, err := bc.resolve(name, true); err != nil || got != want {
			t.Errorf("resolve(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"abs", "out", "real/back/etc", "in/back"} {
		if _, err := bc.resolve(name, true); err == nil || !strings.Contains(err.Error(), "outside the build context") {
			t.Errorf("resolve(%s): %v, want an outside error", name, err)
		}
	}
	if _, err := bc.resolve("loop", true); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
	if got, err := bc.resolve("abs", false); err != nil || got != "abs" {
		t.Errorf("unfollowed last link: %q %v", got, err)
	}
	if _, err := bc.resolve("missing/x", true); !errors.Is(err, errNotInContext) {
		t.Errorf("missing: %v", err)
	}
}

func TestApplyIgnore(t *testing.T) {
	_, dir := jail(t)
	bc, err := unpackContext(bytes.NewReader(tarBytes(t, []entry{
		{name: ".dockerignore", body: "# comment\n*.log\nbuild\n!build/keep.txt\nsecret/**\n"},
		{name: "a.log", body: "x"}, {name: "b.txt", body: "x"},
		{name: "build/out", body: "x"}, {name: "build/keep.txt", body: "x"},
		{name: "secret/k/key", body: "x"}, {name: "sub/c.log", body: "x"},
	})), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.applyIgnore(); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range bc.paths() {
		if bc.entries[p].typ == tar.TypeReg {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if got := strings.Join(paths, " "); got != ".dockerignore b.txt build/keep.txt sub/c.log" {
		t.Fatalf("kept: %s", got)
	}
	if len(bc.children("build")) != 1 {
		t.Fatalf("children of build: %v", bc.children("build"))
	}
}

// COPY's destination resolves inside the step's root: the image's
// symlinks, absolute ones included, never lead out of it.
func TestRootWriterStaysInRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	outside := t.TempDir()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.Symlink("/usr/bin", filepath.Join(root, "bin"))
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.Symlink("../../../../../.."+outside, filepath.Join(root, "climb"))
	w, err := newRootWriter(root, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	for _, p := range []string{"/bin/tool", "/new/dir/z"} {
		if err := w.file(p, strings.NewReader("data"), 1000, 1000, 0o755, time.Time{}); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// Symlinks to host paths resolve in the root, where those are missing.
	for _, p := range []string{"/escape/x", "/climb/y"} {
		if err := w.file(p, strings.NewReader("data"), 1000, 1000, 0o755, time.Time{}); err == nil || !strings.Contains(err.Error(), "symlink to a missing directory") {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/tool")); err != nil {
		t.Fatal("/bin/tool did not follow the image's /bin symlink")
	}
	if des, _ := os.ReadDir(outside); len(des) != 0 {
		t.Fatalf("written outside the root: %v", des)
	}
	// Missing parents are made, owned by the writer's owner.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "new/dir"), &st); err != nil || st.Uid != 1000 || st.Mode&0o777 != 0o755 {
		t.Fatalf("made parent: %+v %v", st, err)
	}
	// A file never replaces a directory; a symlink is replaced, not followed.
	if err := w.file("/usr", strings.NewReader("x"), 0, 0, 0o644, time.Time{}); err == nil {
		t.Fatal("a file replaced a directory")
	}
	if err := w.file("/escape", strings.NewReader("x"), 0, 0, 0o644, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "escape")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("symlink not replaced: %v %v", fi, err)
	}
}

func TestDropMountStubs(t *testing.T) {
	in := tarBytes(t, []entry{
		{name: "dev", typ: tar.TypeDir}, {name: "etc", typ: tar.TypeDir}, {name: "etc/hostname"}, {name: "etc/hosts"},
		{name: "proc", typ: tar.TypeDir}, {name: "sys", typ: tar.TypeDir}, {name: "sys/.wh..wh..opq"},
		{name: "tmp", typ: tar.TypeDir}, {name: "tmp/etc/hosts"},
	})
	var out bytes.Buffer
	d, err := dropMountStubs(bytes.NewReader(in), &out)
	if err != nil || !strings.HasPrefix(d, "sha256:") {
		t.Fatal(d, err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "sys sys/.wh..wh..opq tmp tmp/etc/hosts" {
		t.Fatalf("kept: %s", got)
	}
}

func TestExposedPorts(t *testing.T) {
	for in, want := range map[string]string{"80": "80/tcp", "53/UDP": "53/udp", "8000-8002/tcp": "8000/tcp 8001/tcp 8002/tcp"} {
		got, err := exposedPorts(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"0", "x", "80/icmp", "9-1", "70000"} {
		if _, err := exposedPorts(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzUnpackContext feeds arbitrary tar streams to the context unpacker:
// it may refuse them, but must never write outside the context, and every
// path it indexes must be reachable without crossing a symlink.
func FuzzUnpackContext(f *testing.F) {
	f.Add(tarBytes(f, []entry{{name: "Dockerfile", body: "FROM scratch"}, {name: "a/b", body: "x"}}))
	f.Add(tarBytes(f, []entry{{name: "l", link: "..", typ: tar.TypeSymlink}, {name: "l/x", body: "x"}}))
	f.Add(tarBytes(f, []entry{{name: "d/", typ: tar.TypeDir}, {name: "d", body: "x"}, {name: "d/x", body: "y"}}))
	f.Add(tarBytes(f, []entry{{name: "f", body: "x"}, {name: "h", link: "f", typ: tar.TypeLink}, {name: "../x", body: "x"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, dir := jail(t)
		bc, err := unpackContext(bytes.NewReader(data), dir)
		onlyChild(t, parent)
		if err != nil {
			return
		}
		root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(root)
		for p, e := range bc.entries {
			if p == "" {
				continue
			}
			fd, err := unix.Openat2(root, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
			if err != nil {
				t.Fatalf("indexed %q (%c) is not reachable without symlinks: %v", p, e.typ, err)
			}
			unix.Close(fd)
		}
	})
}

// ADD extracts local archives (plain, gzip, zstd) into the step's root;
// entries that climb out of the destination are refused, and symlinks in
// the archive resolve inside the root.
func TestAddExtractsArchives(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	plain := tarBytes(t, []entry{{name: "pkg/", typ: tar.TypeDir, mode: 0o750}, {name: "pkg/a", body: "a"},
		{name: "/abs", body: "stripped"}, {name: "l", link: "/etc", typ: tar.TypeSymlink}, {name: "l/conf", body: "in root"}})
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			ctxDir, root := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(ctxDir, "pkg.tar"), data, 0o644)
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			bc := &buildContext{dir: ctxDir, entries: map[string]*ctxEntry{"": {typ: tar.TypeDir}, "pkg.tar": {typ: tar.TypeReg, mode: 0o644}}}
			src, err := newCtxSource(bc)
			if err != nil {
				t.Fatal(err)
			}
			defer src.close()
			w, err := newRootWriter(root, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			spec := &copySpec{verb: "ADD", srcs: []string{"pkg.tar"}, dest: "/opt/", unpack: true, fromCtx: true}
			items, err := resolveSources(src, spec, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := copyItems(src, w, spec, items); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]string{"opt/pkg/a": "a", "opt/abs": "stripped", "etc/conf": "in root"} {
				if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
					t.Errorf("%s: %q %v", p, b, err)
				}
			}
			if fi, err := os.Stat(filepath.Join(root, "opt/pkg")); err != nil || fi.Mode().Perm() != 0o750 {
				t.Errorf("pkg dir: %v %v", fi, err)
			}
		})
	}
	// Climbing out of the destination is refused.
	ctxDir, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "evil.tar"), tarBytes(t, []entry{{name: "../../escape", body: "x"}}), 0o644)
	bc := &buildContext{dir: ctxDir, entries: map[string]*ctxEntry{"": {typ: tar.TypeDir}, "evil.tar": {typ: tar.TypeReg, mode: 0o644}}}
	src, _ := newCtxSource(bc)
	defer src.close()
	w, _ := newRootWriter(root, 0, 0)
	defer w.close()
	spec := &copySpec{verb: "ADD", srcs: []string{"evil.tar"}, dest: "/opt/", unpack: true, fromCtx: true}
	items, _ := resolveSources(src, spec, "")
	if err := copyItems(src, w, spec, items); err == nil || !strings.Contains(err.Error(), "climbs out of the destination") {
		t.Fatalf("evil archive: %v", err)
	}
}
