//go:build linux

package pid1

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestExt4SuperSize(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("needs mke2fs (Debian: e2fsprogs)")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 64<<20)
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	size, err := ext4Size(img)
	if err != nil || size != 64<<20 {
		t.Fatalf("size %d, %v; want %d", size, err, 64<<20)
	}
	// The disk grows; the filesystem does not until resize2fs.
	os.Truncate(img, 200<<20)
	if size, _ := ext4Size(img); size != 64<<20 {
		t.Fatalf("after growing the file: %d", size)
	}
	if out, err := exec.Command("resize2fs", img).CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v: %s", err, out)
	}
	if size, _ := ext4Size(img); size != 200<<20 {
		t.Fatalf("after resize2fs: %d", size)
	}
	if _, err := ext4SuperSize(make([]byte, 1024)); err == nil {
		t.Fatal("a zero superblock has a size")
	}
}
