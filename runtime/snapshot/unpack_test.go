//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testkit"
)

type ent = testkit.TarEntry

// sandbox is a directory holding the unpack root and a sibling "outside"
// directory that a hostile layer would like to write to.
type sandbox struct {
	root, outside string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	d := t.TempDir()
	sb := sandbox{root: filepath.Join(d, "a", "b", "root"), outside: filepath.Join(d, "outside")}
	for _, p := range []string{sb.root, sb.outside} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sb.outside, "secret"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	return sb
}

// untouched fails t if anything outside the root changed: the sandbox tree
// must hold exactly a/b/root, outside/ and outside/secret.
func (sb sandbox) untouched(t testing.TB) {
	t.Helper()
	top := filepath.Dir(sb.outside)
	var got []string
	filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if p == sb.root {
			return filepath.SkipDir
		}
		if p != top {
			got = append(got, strings.TrimPrefix(p, top+"/"))
		}
		return nil
	})
	want := "a a/b outside outside/secret"
	if strings.Join(got, " ") != want {
		t.Fatalf("unpack wrote outside its root: tree is %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(sb.outside, "secret")); string(b) != "keep" {
		t.Fatalf("outside/secret changed: %q", b)
	}
}

func TestUnpackRefusesHostileEntries(t *testing.T) {
	testkit.RequireRoot(t)
	cases := []struct {
		name    string
		entries func(sb sandbox) []ent
		entry   string // the entry the error must name
		msg     string
	}{
		{"dotdot", func(sandbox) []ent { return []ent{{Name: "../../../outside/secret", Body: []byte("pwned")}} },
			"../../../outside/secret", `".."`},
		{"dotdot inside", func(sandbox) []ent { return []ent{{Name: "x/../../outside/new", Body: []byte("pwned")}} },
			"x/../../outside/new", `".."`},
		{"absolute", func(sb sandbox) []ent { return []ent{{Name: sb.outside + "/new", Body: []byte("pwned")}} },
			"", "absolute path"},
		{"relative symlink out", func(sandbox) []ent {
			return []ent{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/up", Type: tar.TypeSymlink, Linkname: "../../../../outside"}}
		}, "etc/up", "leads out of the root"},
		{"absolute symlink then write through it", func(sb sandbox) []ent {
			return []ent{{Name: "evil", Type: tar.TypeSymlink, Linkname: sb.outside}, {Name: "evil/new", Body: []byte("pwned")}}
		}, "evil/new", `crosses symlink "evil"`},
		{"symlinked parent, deep", func(sb sandbox) []ent {
			return []ent{{Name: "a/b/", Type: tar.TypeDir}, {Name: "a/b/c", Type: tar.TypeSymlink, Linkname: sb.outside},
				{Name: "a/b/c/d/new", Body: []byte("pwned")}}
		}, "a/b/c/d/new", `crosses symlink "a/b/c"`},
		{"symlink to dotdot", func(sandbox) []ent {
			return []ent{{Name: "up", Type: tar.TypeSymlink, Linkname: ".."}}
		}, "up", "leads out of the root"},
		{"hardlink out", func(sandbox) []ent {
			return []ent{{Name: "h", Type: tar.TypeLink, Linkname: "../../../outside/secret"}}
		}, "h", "leads out of the root"},
		{"hardlink to host path", func(sb sandbox) []ent {
			return []ent{{Name: "h", Type: tar.TypeLink, Linkname: sb.outside + "/secret"}}
		}, "h", "not in this layer"},
		{"hardlink through symlink", func(sb sandbox) []ent {
			return []ent{{Name: "s", Type: tar.TypeSymlink, Linkname: sb.outside}, {Name: "h", Type: tar.TypeLink, Linkname: "s/secret"}}
		}, "h", "crosses symlink"},
		{"char device", func(sandbox) []ent { return []ent{{Name: "dev/mem", Type: tar.TypeChar}} }, "dev/mem", "device node"},
		{"block device", func(sandbox) []ent { return []ent{{Name: "sda", Type: tar.TypeBlock}} }, "sda", "device node"},
		{"whiteout of dotdot", func(sandbox) []ent { return []ent{{Name: "x/.wh...", Body: nil}} }, "x/.wh...", "whiteout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sb := newSandbox(t)
			entries := c.entries(sb)
			_, err := Unpack(sb.root, bytes.NewReader(testkit.LayerTar(entries)))
			if err == nil {
				t.Fatal("hostile layer unpacked without error")
			}
			var ue *UnpackError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not an UnpackError", err)
			}
			if c.entry != "" && ue.Entry != c.entry {
				t.Fatalf("error names entry %q, want %q (%v)", ue.Entry, c.entry, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not say %q", err, c.msg)
			}
			sb.untouched(t)
		})
	}
}

func TestUnpackPreservesMetadata(t *testing.T) {
	testkit.RequireRoot(t)
	sb := newSandbox(t)
	mt := time.Unix(1600000000, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header, body string) {
		h.ModTime, h.Format = mt, tar.FormatPAX
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	write(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 10, Gid: 20}, "")
	write(&tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "suid")
	write(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, "")
	write(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1001,
		PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}}, "data")
	write(&tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "f"}, "")
	write(&tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/alternatives/x"}, "")
	write(&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, "")
	write(&tar.Header{Name: "gone/.wh.file", Typeflag: tar.TypeReg}, "")
	write(&tar.Header{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	write(&tar.Header{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg}, "")
	write(&tar.Header{Name: "replaced", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	write(&tar.Header{Name: "replaced/child", Typeflag: tar.TypeReg, Mode: 0o644}, "x")
	write(&tar.Header{Name: "replaced", Typeflag: tar.TypeReg, Mode: 0o644}, "now a file")
	tw.Close()

	n, err := Unpack(sb.root, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len("suid")+len("data")+len("x")+len("now a file")) {
		t.Errorf("size %d", n)
	}
	st := func(name string) unix.Stat_t {
		t.Helper()
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(sb.root, name), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := st("usr"); s.Mode&0o7777 != 0o750 || s.Uid != 10 || s.Gid != 20 || s.Mtim.Sec != mt.Unix() {
		t.Errorf("usr: mode %o uid %d gid %d mtime %d", s.Mode&0o7777, s.Uid, s.Gid, s.Mtim.Sec)
	}
	if s := st("usr/bin/su"); s.Mode&0o7777 != 0o4755 {
		t.Errorf("su mode %o", s.Mode&0o7777)
	}
	if s := st("tmp"); s.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o", s.Mode&0o7777)
	}
	f, hl := st("f"), st("hl")
	if f.Uid != 1000 || f.Gid != 1001 || f.Mode&0o777 != 0o640 || f.Mtim.Sec != mt.Unix() || f.Ino != hl.Ino {
		t.Errorf("f: %+v hl ino %d", f, hl.Ino)
	}
	v := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(sb.root, "f"), "user.note", v); err != nil || string(v[:n]) != "hi" {
		t.Errorf("xattr user.note: %q %v", v[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(sb.root, "f"), "trusted.overlay.redirect", v); err == nil {
		t.Error("trusted.overlay.* xattr taken from the tar")
	}
	if l, _ := os.Readlink(filepath.Join(sb.root, "abs")); l != "/etc/alternatives/x" {
		t.Errorf("abs symlink -> %q", l)
	}
	if s := st("fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo mode %o", s.Mode)
	}
	if s := st("gone/file"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if n, err := unix.Lgetxattr(filepath.Join(sb.root, "opq"), opaqueXattr, v); err != nil || string(v[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", v[:n], err)
	}
	if _, err := os.Stat(filepath.Join(sb.root, "opq", whiteoutOpaque)); err == nil {
		t.Error("opaque marker written as a file")
	}
	if b, _ := os.ReadFile(filepath.Join(sb.root, "replaced")); string(b) != "now a file" {
		t.Errorf("replaced: %q", b)
	}
	sb.untouched(t)
}

// FuzzUnpack feeds arbitrary bytes (seeded with hostile layers) to Unpack:
// whatever happens, nothing may appear outside the root, and no device
// other than a whiteout may appear inside it.
func FuzzUnpack(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root: unpacking sets ownership and makes whiteout devices")
	}
	seeds := [][]ent{
		{{Name: "../x", Body: []byte("a")}},
		{{Name: "s", Type: tar.TypeSymlink, Linkname: "/tmp"}, {Name: "s/x", Body: []byte("a")}},
		{{Name: "s", Type: tar.TypeSymlink, Linkname: "../.."}, {Name: "s/x"}},
		{{Name: "h", Type: tar.TypeLink, Linkname: "../../etc/passwd"}},
		{{Name: "d/", Type: tar.TypeDir}, {Name: "d/f", Body: []byte("x")}, {Name: "d/.wh.f"}, {Name: "d/.wh..wh..opq"}},
		{{Name: "c", Type: tar.TypeChar}},
		{{Name: "a/b/c", Body: []byte("x")}, {Name: "a", Body: []byte("file")}, {Name: "a/b/d", Body: []byte("x")}},
	}
	for _, s := range seeds {
		f.Add(testkit.LayerTar(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sb := newSandbox(t)
		Unpack(sb.root, bytes.NewReader(data))
		sb.untouched(t)
		filepath.WalkDir(sb.root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			var s unix.Stat_t
			if unix.Lstat(p, &s) == nil {
				if typ := s.Mode & unix.S_IFMT; typ == unix.S_IFBLK || (typ == unix.S_IFCHR && s.Rdev != 0) {
					t.Fatalf("device node %s made", p)
				}
			}
			return nil
		})
	})
}
