//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/runtime/errdefs"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// openStore opens a store in a temp dir and unmounts every key at cleanup.
func openStore(t *testing.T) *Store {
	t.Helper()
	testkit.RequireRoot(t)
	s, err := Open(filepath.Join(t.TempDir(), "snap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		keys, _ := s.Keys()
		for k := range keys {
			s.Unmount(k)
		}
	})
	return s
}

// apply applies layer tars bottom-up and returns the top chain ID.
func apply(t *testing.T, s *Store, layers ...[]byte) string {
	t.Helper()
	chain := ""
	for _, l := range layers {
		id, err := s.Apply(context.Background(), chain, digestOf(l), bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		chain = id
	}
	return chain
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestOverlayWhiteoutsAndOpaqueDirs(t *testing.T) {
	s := openStore(t)
	l1 := testkit.LayerTar([]ent{
		{Name: "a/", Type: tar.TypeDir}, {Name: "a/old1", Body: []byte("1")}, {Name: "a/old2", Body: []byte("2")},
		{Name: "b/", Type: tar.TypeDir}, {Name: "b/x", Body: []byte("x")}, {Name: "c", Body: []byte("c")},
		{Name: "keep", Body: []byte("k")},
	})
	l2 := testkit.LayerTar([]ent{
		{Name: ".wh.c"}, {Name: "a/", Type: tar.TypeDir}, {Name: "a/.wh..wh..opq"}, {Name: "a/new", Body: []byte("n")},
		{Name: "b/y", Body: []byte("y")},
	})
	top := apply(t, s, l1, l2)
	if want := ChainID(digestOf(l1), digestOf(l2)); top != want {
		t.Fatalf("chain ID %s, want %s", top, want)
	}
	root, err := s.Prepare("c1", top)
	if err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, root); got != "a b keep" {
		t.Fatalf("rootfs: %q", got)
	}
	if got := listDir(t, filepath.Join(root, "a")); got != "new" {
		t.Fatalf("opaque a/: %q", got)
	}
	if got := listDir(t, filepath.Join(root, "b")); got != "x y" {
		t.Fatalf("merged b/: %q", got)
	}

	// Changes land in the writable layer; Diff turns them into a layer tar.
	os.WriteFile(filepath.Join(root, "added"), []byte("hello"), 0o644)
	os.Remove(filepath.Join(root, "keep"))
	os.RemoveAll(filepath.Join(root, "b"))
	os.Mkdir(filepath.Join(root, "b"), 0o755)
	os.WriteFile(filepath.Join(root, "b", "z"), []byte("z"), 0o644)
	var buf bytes.Buffer
	diffID, err := s.Diff("c1", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if diffID != digestOf(buf.Bytes()) {
		t.Fatalf("Diff returned %s for content %s", diffID, digestOf(buf.Bytes()))
	}
	diff := append([]byte(nil), buf.Bytes()...)
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if got, want := strings.Join(names, " "), "added b/ b/.wh..wh..opq b/z .wh.keep"; got != want {
		t.Fatalf("diff entries %q, want %q", got, want)
	}

	// The diff applies as a layer: a new image built on it shows the changes.
	top2, err := s.Apply(context.Background(), top, diffID, bytes.NewReader(diff))
	if err != nil {
		t.Fatal(err)
	}
	root2, err := s.Prepare("c2", top2)
	if err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, root2); got != "a added b" {
		t.Fatalf("committed rootfs: %q", got)
	}
	if got := listDir(t, filepath.Join(root2, "b")); got != "z" {
		t.Fatalf("committed b/: %q", got)
	}
}

func TestPrepareRemountKeepsChanges(t *testing.T) {
	s := openStore(t)
	top := apply(t, s, testkit.LayerTar([]ent{{Name: "etc/hostname", Body: []byte("img")}}))
	root, err := s.Prepare("ctr", top)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Prepare("ctr", top); err != nil || again != root {
		t.Fatalf("Prepare of a mounted key: %q %v", again, err)
	}
	os.WriteFile(filepath.Join(root, "state"), []byte("kept"), 0o644)
	if err := s.Unmount("ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); err == nil {
		t.Fatal("still mounted after Unmount")
	}
	// A restarted agent reopens the store and prepares the key again.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	root2, err := s2.Prepare("ctr", top)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root2, "state")); string(b) != "kept" {
		t.Fatalf("writable layer lost over a remount: %q", b)
	}
	if _, err := s2.Prepare("ctr", ""); !errdefs.IsConflict(err) {
		t.Fatalf("Prepare over another chain: %v, want a conflict", err)
	}
	if err := s2.Remove("ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "keys", "ctr")); !os.IsNotExist(err) {
		t.Fatalf("key directory left after Remove: %v", err)
	}
	if err := s2.Remove("ctr"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestScratchImage(t *testing.T) {
	s := openStore(t)
	root, err := s.Prepare("scratch", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, root); got != "" {
		t.Fatalf("scratch rootfs not empty: %q", got)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, filepath.Join(s.Root(), "empty")); got != "" {
		t.Fatalf("write reached the shared empty lower: %q", got)
	}
}

// With absolute paths, 150 layers would need ~10 KB of mount options; the
// short relative links must keep it under a page.
func TestManyLayers(t *testing.T) {
	s := openStore(t)
	var layers [][]byte
	for i := range 150 {
		layers = append(layers, testkit.LayerTar([]ent{{Name: fmt.Sprintf("f%03d", i), Body: []byte{byte(i)}}}))
	}
	top := apply(t, s, layers...)
	root, err := s.Prepare("many", top)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 150 {
		t.Fatalf("%d files in a 150-layer rootfs", len(ents))
	}
}

func TestApplyConcurrentSameChain(t *testing.T) {
	s := openStore(t)
	l := testkit.LayerTar([]ent{{Name: "big", Body: bytes.Repeat([]byte("x"), 1<<20)}})
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = s.Apply(context.Background(), "", digestOf(l), bytes.NewReader(l))
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != digestOf(l) {
			t.Fatalf("apply %d: %s %v", i, ids[i], errs[i])
		}
	}
	if got := listDir(t, filepath.Join(s.Root(), "layers")); got != strings.TrimPrefix(digestOf(l), "sha256:") {
		t.Fatalf("layers dir: %q", got)
	}
	if got := listDir(t, filepath.Join(s.Root(), "l")); len(strings.Fields(got)) != 1 {
		t.Fatalf("links: %q", got)
	}
}

func TestApplyRejectsWrongDigestAndHostileLayer(t *testing.T) {
	s := openStore(t)
	l := testkit.LayerTar([]ent{{Name: "f", Body: []byte("x")}})
	wrong := digestOf([]byte("something else"))
	if _, err := s.Apply(context.Background(), "", wrong, bytes.NewReader(l)); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong diff ID: %v", err)
	}
	bad := testkit.LayerTar([]ent{{Name: "../escape", Body: []byte("x")}})
	_, err := s.Apply(context.Background(), "", digestOf(bad), bytes.NewReader(bad))
	if err == nil || !strings.Contains(err.Error(), `"../escape"`) {
		t.Fatalf("hostile layer: %v", err)
	}
	if s.Has(wrong) || s.Has(digestOf(bad)) {
		t.Fatal("a failed layer is listed")
	}
	if got := listDir(t, filepath.Join(s.Root(), "layers")); got != "" {
		t.Fatalf("leftovers in layers/: %q", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "escape")); err == nil {
		t.Fatal("hostile layer wrote outside the store")
	}
}

func TestGCKeepsLiveChains(t *testing.T) {
	s := openStore(t)
	base := testkit.LayerTar([]ent{{Name: "base", Body: []byte("b")}})
	a := testkit.LayerTar([]ent{{Name: "a", Body: []byte("a")}})
	b := testkit.LayerTar([]ent{{Name: "b", Body: []byte("b")}})
	imgA := apply(t, s, base, a)
	imgB := apply(t, s, base, b)
	if _, err := s.Prepare("ctr", imgB); err != nil {
		t.Fatal(err)
	}
	// Only image A is kept, but a container still stands on B.
	removed, err := s.GC([]string{imgA})
	if err != nil || len(removed) != 0 {
		t.Fatalf("GC removed %v (%v) while everything is in use", removed, err)
	}
	if err := s.Remove("ctr"); err != nil {
		t.Fatal(err)
	}
	removed, err = s.GC([]string{imgA})
	if err != nil || len(removed) != 1 || removed[0] != imgB {
		t.Fatalf("GC removed %v (%v), want only %s", removed, err, imgB)
	}
	if !s.Has(digestOf(base)) || !s.Has(imgA) || s.Has(imgB) {
		t.Fatal("wrong layers left after GC")
	}
	removed, _ = s.GC(nil)
	if len(removed) != 2 {
		t.Fatalf("GC of everything removed %v", removed)
	}
	if got := listDir(t, filepath.Join(s.Root(), "l")); got != "" {
		t.Fatalf("links left: %q", got)
	}
}

func TestOpenSweepsTornState(t *testing.T) {
	s := openStore(t)
	os.MkdirAll(filepath.Join(s.Root(), "layers", ".tmp-123", "diff"), 0o755)
	os.Symlink("../layers/nothere/diff", filepath.Join(s.Root(), "l", "DANGLING0000"))
	if _, err := Open(s.Root()); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, filepath.Join(s.Root(), "layers")) + listDir(t, filepath.Join(s.Root(), "l")); got != "" {
		t.Fatalf("leftovers after Open: %q", got)
	}
}

func TestUsage(t *testing.T) {
	s := openStore(t)
	root, err := s.Prepare("u", "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "f"), bytes.Repeat([]byte("x"), 3000), 0o644)
	os.Link(filepath.Join(root, "f"), filepath.Join(root, "g"))
	if n, err := s.Usage("u"); err != nil || n != 3000 {
		t.Fatalf("usage %d %v", n, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		t.Fatal(err)
	}
}
