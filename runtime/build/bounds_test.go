//go:build linux

package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// withFDLimit runs fn with the soft RLIMIT_NOFILE at n (this package's
// tests do not run in parallel).
func withFDLimit(t *testing.T, n uint64, fn func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	fn()
}

// TestUnpackManyDirectoriesBoundedFDs: 10,000 directories, wide and deep,
// unpack (and are written again by a COPY) under a 256-descriptor limit.
func TestUnpackManyDirectoriesBoundedFDs(t *testing.T) {
	var entries []entry
	for i := 0; i < 100; i++ {
		for j := 0; j < 100; j++ {
			entries = append(entries, entry{name: fmt.Sprintf("d%d/e%d/", i, j), typ: tar.TypeDir, mode: 0o755})
		}
		// Back to earlier directories now and then: their fds were closed.
		entries = append(entries, entry{name: fmt.Sprintf("d%d/e0/f", i/2), body: "x"})
	}
	deep := ""
	for i := 0; i < 300; i++ {
		deep += "n/"
	}
	entries = append(entries, entry{name: deep + "leaf", body: "deep"})
	raw := tarBytes(t, entries)
	_, dir := jail(t)
	dst := t.TempDir()
	withFDLimit(t, 256, func() {
		bc, err := unpackContext(bytes.NewReader(raw), dir)
		if err != nil {
			t.Fatalf("unpack: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, deep, "leaf")); err != nil || string(b) != "deep" {
			t.Fatalf("deep file: %q %v", b, err)
		}
		cs, err := newCtxSource(bc)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.close()
		w, err := newRootWriter(dst, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.close()
		root, _ := cs.stat("")
		if err := copyItems(cs, w, &copySpec{verb: "COPY", dest: "/ctx/"}, []item{{name: ".", n: root}}); err != nil {
			t.Fatalf("copy: %v", err)
		}
	})
	if _, err := os.Stat(filepath.Join(dst, "ctx", "d99", "e99")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "ctx", deep, "leaf")); err != nil || string(b) != "deep" {
		t.Fatalf("copied deep file: %q %v", b, err)
	}
}

// TestHardLinksStayLinks: a file and its links are one inode in the
// unpacked context and in what a COPY writes (a copy per link would turn a
// small archive into any size).
func TestHardLinksStayLinks(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 4096)
	entries := []entry{{name: "f", body: body}}
	for i := 0; i < 500; i++ {
		entries = append(entries, entry{name: fmt.Sprintf("links/l%d", i), typ: tar.TypeLink, link: "f"})
	}
	entries = append(entries, entry{name: "links/again", typ: tar.TypeLink, link: "links/l3"})
	// f is then replaced: the links keep the old content, and a COPY
	// must not link them to the new f.
	entries = append(entries, entry{name: "f", body: "new"})
	_, dir := jail(t)
	bc, err := unpackContext(bytes.NewReader(tarBytes(t, entries)), dir)
	if err != nil {
		t.Fatal(err)
	}
	ino := func(p string) (uint64, uint64) {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino, st.Nlink
	}
	i0, n0 := ino(filepath.Join(dir, "links/l0"))
	if i1, _ := ino(filepath.Join(dir, "links/again")); i1 != i0 || n0 != 501 {
		t.Fatalf("context: links/l0 inode %d (%d links), links/again %d", i0, n0, i1)
	}
	if e := bc.entries["links/again"]; e.digest != bc.entries["links/l0"].digest || e.linkTo != "f" || bc.entries["f"].size != 3 {
		t.Fatalf("index: %+v", e)
	}

	dst := t.TempDir()
	cs, _ := newCtxSource(bc)
	defer cs.close()
	w, _ := newRootWriter(dst, 0, 0)
	defer w.close()
	root, _ := cs.stat("")
	if err := copyItems(cs, w, &copySpec{verb: "COPY", dest: "/c/"}, []item{{name: ".", n: root}}); err != nil {
		t.Fatal(err)
	}
	c0, cn := ino(filepath.Join(dst, "c/links/l0"))
	if cf, _ := ino(filepath.Join(dst, "c/f")); cf == c0 || cn != 501 {
		t.Fatalf("COPY: links/l0 inode %d with %d links; f %d", c0, cn, cf)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "c/links/again")); string(b) != body {
		t.Fatal("COPY: a link has the wrong content")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "c/f")); string(b) != "new" {
		t.Fatal("COPY: f has the wrong content")
	}
}

func TestExpansionBound(t *testing.T) {
	lex := shell.NewLex('\\')
	big := strings.Repeat("x", 300<<10)
	env := []string{"A=" + big, "S=ab", "EMPTY="}
	for word, ok := range map[string]bool{
		"$A":                       true,
		"$A$A$A":                   true,
		"$A$A$A$A":                 false,
		"${A}${A}-${A:-$A}":        false,
		"${S/a/$A}":                false, // a replacement may repeat per character
		"${S}${S}${NOPE}${EMPTY}$": true,
		"plain":                    true,
	} {
		_, err := newExpander(lex, env).word(word)
		if ok != (err == nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("%q: %v", word, err)
		}
	}
	// One instruction's words add up.
	e := newExpander(lex, env)
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		_, err = e.word("$A")
	}
	if err == nil || !strings.Contains(err.Error(), "variables take more than") {
		t.Fatalf("40 words of 300 KiB: %v", err)
	}
}
