package ext2

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pattern is n bytes that differ from block to block, so a block written
// in the wrong place shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/4093) ^ byte(i) ^ seed
	}
	return b
}

func writeImage(t *testing.T, files []File) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, files, Options{Label: "berth-test", UUID: [16]byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	return p
}

// check runs e2fsprogs on the image: e2fsck must find nothing to fix and
// debugfs must read back every file as written.
func check(t *testing.T, img string, files []File) {
	t.Helper()
	for _, tool := range []string{"e2fsck", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian package e2fsprogs)", tool)
		}
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	for _, f := range files {
		switch f.Mode & modeType {
		case ModeRegular:
			want := f.Data
			if want == nil {
				var err error
				if want, err = os.ReadFile(f.Source); err != nil {
					t.Fatal(err)
				}
			}
			got, err := exec.Command("debugfs", "-R", "cat /"+f.Path, img).Output()
			if err != nil {
				t.Fatalf("debugfs cat %s: %v", f.Path, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: read back %d bytes (sha256 %x), wrote %d (%x)", f.Path, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
			}
		case ModeSymlink:
			// A fast symlink's target is in stat's output, a slow one's is
			// its block's contents.
			out, err := exec.Command("debugfs", "-R", "stat /"+f.Path, img).CombinedOutput()
			if len(f.Data) >= 60 {
				out, err = exec.Command("debugfs", "-R", "cat /"+f.Path, img).Output()
			}
			if err != nil || !strings.Contains(string(out), string(f.Data)) {
				t.Errorf("symlink %s: want target %q in:\n%s", f.Path, f.Data, out)
			}
		}
	}
}

func TestImage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big")
	// Beyond the direct and single indirect blocks: a double indirect one.
	if err := os.WriteFile(src, pattern((12+1024+300)*4096+17, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	var many []File
	for i := 0; i < 300; i++ { // a directory of several blocks
		many = append(many, File{Path: fmt.Sprintf("usr/share/many/file-with-a-long-name-%04d", i), Mode: ModeRegular | 0o644, Data: []byte{byte(i)}})
	}
	files := append([]File{
		{Path: "usr/lib/berth/berth-agent", Mode: ModeRegular | 0o755, Source: src},
		{Path: "usr/lib/berth/small", Mode: ModeRegular | 0o644, Data: pattern(13*4096, 1)},
		{Path: "usr/lib/berth/empty", Mode: ModeRegular | 0o644, Data: []byte{}},
		{Path: "bin/sh", Mode: ModeSymlink | 0o777, Data: []byte("busybox")},
		{Path: "bin/long", Mode: ModeSymlink | 0o777, Data: []byte("/" + strings.Repeat("x/", 60) + "target")},
		{Path: "etc", Mode: ModeDir | 0o700},
	}, many...)
	img := writeImage(t, files)
	check(t, img, files)

	// The same inputs, in another order, give the same bytes.
	rev := append([]File(nil), files...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(writeImage(t, rev))
	if !bytes.Equal(a, b) {
		t.Error("the same files in another order gave another image")
	}
}

// TestGroups: an image larger than one block group (128 MiB) has more
// groups, with backup superblocks, and files that run across a group's
// metadata.
func TestGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 300 MB image")
	}
	dir := t.TempDir()
	var files []File
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, pattern(90<<20+i, byte(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Path: fmt.Sprintf("data/%d", i), Mode: ModeRegular | 0o644, Source: p})
	}
	img := writeImage(t, files)
	check(t, img, files)
	out, err := exec.Command("dumpe2fs", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "\nGroup "); n < 3 {
		t.Errorf("%d groups, want 3 or more", n)
	}
}

func TestRefuses(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	uuid := Options{UUID: [16]byte{1}}
	for name, c := range map[string]struct {
		files []File
		o     Options
	}{
		"zero UUID":       {[]File{{Path: "a", Mode: ModeRegular}}, Options{}},
		"twice":           {[]File{{Path: "a", Mode: ModeRegular}, {Path: "a", Mode: ModeRegular}}, uuid},
		"under a file":    {[]File{{Path: "a", Mode: ModeRegular}, {Path: "a/b", Mode: ModeRegular}}, uuid},
		"device":          {[]File{{Path: "dev/null", Mode: 0o020666}}, uuid},
		"lost+found":      {[]File{{Path: "lost+found", Mode: ModeDir | 0o755}}, uuid},
		"empty symlink":   {[]File{{Path: "l", Mode: ModeSymlink | 0o777}}, uuid},
		"label too long":  {nil, Options{UUID: [16]byte{1}, Label: strings.Repeat("x", 17)}},
		"missing source":  {[]File{{Path: "a", Mode: ModeRegular, Source: "/nonexistent/file"}}, uuid},
		"source dir":      {[]File{{Path: "a", Mode: ModeRegular, Source: "/"}}, uuid},
		"name of 256 ch.": {[]File{{Path: strings.Repeat("n", 256), Mode: ModeRegular}}, uuid},
	} {
		if err := Write(f, c.files, c.o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
