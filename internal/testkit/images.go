package testkit

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is Debian's statically linked busybox (package busybox-static).
const BusyboxPath = "/bin/busybox"

// DefaultPath is the PATH every test image sets, as Docker Hub's images do.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// TarEntry is one file of a layer built by LayerTar.
type TarEntry struct {
	Name     string
	Type     byte // tar.TypeReg (default), TypeDir, TypeSymlink, TypeLink …
	Mode     int64
	Body     []byte
	Linkname string
	Uid, Gid int
}

// LayerTar writes entries as an uncompressed layer tar, in order. It does
// no validation: tests use it to build hostile layers too.
func LayerTar(entries []TarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname,
			Uid: e.Uid, Gid: e.Gid, ModTime: mtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(fmt.Sprintf("LayerTar %s: %v", e.Name, err))
		}
		if h.Size > 0 {
			tw.Write(e.Body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// BusyboxEntries is a minimal Linux userland: busybox with a symlink per
// applet, /etc/passwd and /etc/group with root, nobody and a uid 1000 user,
// and the usual empty directories.
func BusyboxEntries(t T) []TarEntry {
	t.Helper()
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Skipf("needs Debian's busybox-static at %s: %v", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	entries := []TarEntry{
		{Name: "bin/", Type: tar.TypeDir}, {Name: "dev/", Type: tar.TypeDir}, {Name: "etc/", Type: tar.TypeDir},
		{Name: "home/", Type: tar.TypeDir}, {Name: "proc/", Type: tar.TypeDir}, {Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "sys/", Type: tar.TypeDir}, {Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777}, {Name: "usr/", Type: tar.TypeDir},
		{Name: "usr/bin/", Type: tar.TypeDir}, {Name: "usr/sbin/", Type: tar.TypeDir}, {Name: "sbin/", Type: tar.TypeDir},
		{Name: "var/", Type: tar.TypeDir}, {Name: "var/www/", Type: tar.TypeDir},
		{Name: "bin/busybox", Mode: 0o755, Body: bin},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n")},
		{Name: "etc/group", Body: []byte("root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n")},
		{Name: "home/user/", Type: tar.TypeDir, Uid: 1000, Gid: 1000},
		{Name: "var/www/index.html", Body: []byte("<h1>berth test page</h1>\n")},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		entries = append(entries, TarEntry{Name: "bin/" + applet, Type: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	return entries
}

// ImageFromLayers builds a linux/amd64 image from uncompressed layer tars
// (gzip-compressed when pushed) with config cfg applied over a default PATH.
func ImageFromLayers(t T, cfg v1.Config, layers ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		data := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, layer)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(cfg.Env) == 0 {
		cfg.Env = []string{"PATH=" + DefaultPath}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Config = "amd64", "linux", cfg
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxImage is the standard test image: busybox with CMD ["sh"].
func BusyboxImage(t T) v1.Image {
	t.Helper()
	return ImageFromLayers(t, v1.Config{Cmd: []string{"sh"}}, LayerTar(BusyboxEntries(t)))
}

// Push writes img to ref (e.g. "127.0.0.1:5000/busybox:latest") over plain
// HTTP, as a test registry serves it.
func Push(t T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// PushIndex writes a multi-platform index of imgs (keyed "os/arch") to ref.
func PushIndex(t T, ref string, imgs map[string]v1.Image) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for plat, img := range imgs {
		os, arch, _ := strings.Cut(plat, "/")
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
}
