// Command hello builds berth/hello:latest, the image `make up` and the VM's
// first boot run to show that everything works, and writes it as a
// docker-archive tar (what `docker load` reads). It is `make hello`:
//
//	go run ./build/hello -arch amd64 -out bin/hello.tar
//
// The image is busybox from Debian's busybox-static package, pinned with its
// sha256 in hello.lock and downloaded once with `apt-get download` into
// build/hello/cache, plus a greeting its CMD prints. Every input is pinned
// and every timestamp fixed, so the output is byte for byte reproducible.
// `-update-lock` pins the newest busybox-static Debian has.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	imageRef = "berth/hello:latest"
	pkg      = "busybox-static"
)

// epoch is every timestamp in the image, for reproducible output.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const greeting = `
Hello from Berth!
This message shows that your installation appears to be working correctly.

To generate this message, Berth took the following steps:
 1. The docker client contacted the Berth engine.
 2. The engine loaded the "berth/hello" image that ships with Berth.
 3. The engine created a new container from that image, which runs the
    program that produced this output.
 4. The engine streamed that output to the docker client, which sent it
    to your terminal.

Your containers run in a small Linux VM, and any docker client, Compose
file or Testcontainers suite can talk to it through the usual socket:
 $ export DOCKER_HOST=unix://$HOME/.berth/run/docker.sock
 $ docker run -it --rm berth/hello sh
`

func main() {
	dir := flag.String("dir", "build/hello", "directory holding hello.lock and the package cache")
	arch := flag.String("arch", runtime.GOARCH, "image architecture (a Debian architecture name: amd64, arm64)")
	out := flag.String("out", "bin/hello.tar", "docker-archive tar to write")
	update := flag.Bool("update-lock", false, "pin the newest "+pkg+" Debian has and rewrite hello.lock")
	flag.Parse()
	if err := build(*dir, *arch, *out, *update); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func build(dir, arch, out string, update bool) error {
	lockPath := filepath.Join(dir, "hello.lock")
	lock, err := readLock(lockPath)
	if err != nil {
		return err
	}
	cache := filepath.Join(dir, "cache", arch)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	var deb string
	if update {
		if deb, err = newest(cache, arch); err != nil {
			return err
		}
		v, err := exec.Command("dpkg-deb", "-f", deb, "Version").Output()
		if err != nil {
			return fmt.Errorf("dpkg-deb -f %s: %w", deb, err)
		}
		lock[arch] = pin{strings.TrimSpace(string(v)), fileSHA(deb)}
		if err := writeLock(lockPath, lock); err != nil {
			return err
		}
	} else {
		p, ok := lock[arch]
		if !ok {
			return fmt.Errorf("%s pins no %s for %s (run with -update-lock)", lockPath, pkg, arch)
		}
		deb = filepath.Join(cache, fmt.Sprintf("%s_%s_%s.deb", pkg, strings.ReplaceAll(p.version, ":", "%3a"), arch))
		if fileSHA(deb) != p.sha {
			if err := aptDownload(cache, fmt.Sprintf("%s:%s=%s", pkg, arch, p.version)); err != nil {
				return err
			}
			if got := fileSHA(deb); got != p.sha {
				return fmt.Errorf("%s: sha256 %s, hello.lock pins %s", deb, got, p.sha)
			}
		}
	}
	busybox, err := extract(deb, "./bin/busybox")
	if err != nil {
		return err
	}
	img, err := helloImage(busybox, arch)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(imageRef)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := tarball.Write(tag, img, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	id, _ := img.ConfigName()
	fmt.Printf("%s: %s (%s, busybox %s)\n", out, imageRef, id, lock[arch].version)
	return nil
}

// helloImage is busybox, its applets (so `docker run -it berth/hello sh`
// works) and the greeting, in one layer.
func helloImage(busybox []byte, arch string) (v1.Image, error) {
	applets, err := appletList(busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format, h.Uname, h.Gname = epoch, tar.FormatPAX, "", ""
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	for _, d := range []string{"bin/", "etc/", "tmp/", "usr/", "usr/share/", "usr/share/berth/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		add(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode}, nil)
	}
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, busybox)
	for _, a := range applets {
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	add(&tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:\nnogroup:x:65534:\n"))
	add(&tar.Header{Name: "usr/share/berth/hello.txt", Typeflag: tar.TypeReg, Mode: 0o644}, []byte(greeting))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerTar := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "build/hello: busybox-static and a greeting", Comment: "berth"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:    []string{"cat", "/usr/share/berth/hello.txt"},
		Labels: map[string]string{"org.opencontainers.image.title": "berth/hello", "org.opencontainers.image.description": "Berth's hello image"},
	}
	return mutate.ConfigFile(img, cf)
}

// appletList asks busybox itself for its applets when it can run here, and
// otherwise reads the list from the binary (a cross-architecture build).
func appletList(busybox []byte) ([]string, error) {
	f, err := os.CreateTemp("", "busybox-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	f.Write(busybox)
	f.Chmod(0o755)
	f.Close()
	if out, err := exec.Command(f.Name(), "--list").Output(); err == nil {
		var list []string
		for _, a := range strings.Fields(string(out)) {
			if a != "busybox" && !strings.Contains(a, "/") {
				list = append(list, a)
			}
		}
		sort.Strings(list)
		return list, nil
	}
	// The few the greeting and `sh` need.
	return []string{"cat", "echo", "ls", "sh"}, nil
}

// extract returns one file of a .deb.
func extract(deb, member string) ([]byte, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb: %w (is dpkg installed?)", err)
	}
	defer cmd.Wait()
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", deb, err)
		}
		if h.Name == member {
			b, err := io.ReadAll(tr)
			io.Copy(io.Discard, stdout)
			return b, err
		}
	}
	return nil, fmt.Errorf("%s has no %s", deb, member)
}

func newest(cache, arch string) (string, error) {
	if err := aptDownload(cache, pkg+":"+arch); err != nil {
		return "", err
	}
	m, _ := filepath.Glob(filepath.Join(cache, pkg+"_*_"+arch+".deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, cache)
	}
	sort.Slice(m, func(i, j int) bool {
		a, _ := os.Stat(m[i])
		b, _ := os.Stat(m[j])
		return a.ModTime().After(b.ModTime())
	})
	return m[0], nil
}

func aptDownload(dir, spec string) error {
	cmd := exec.Command("apt-get", "download", "-q", spec)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %v: %s", spec, err, out)
	}
	return nil
}

func fileSHA(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type pin struct{ version, sha string }

// hello.lock: "# comment" lines, then "ARCH VERSION SHA256" per architecture.
func readLock(p string) (map[string]pin, error) {
	out := map[string]pin{}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s: bad line %q", p, line)
		}
		out[fs[0]] = pin{fs[1], fs[2]}
	}
	return out, sc.Err()
}

func writeLock(p string, lock map[string]pin) error {
	var b strings.Builder
	b.WriteString("# " + pkg + " for berth/hello, per architecture: ARCH VERSION SHA256 of the .deb.\n")
	b.WriteString("# Rewrite with: go run ./build/hello -arch ARCH -update-lock\n")
	var archs []string
	for a := range lock {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	for _, a := range archs {
		fmt.Fprintf(&b, "%s %s %s\n", a, lock[a].version, lock[a].sha)
	}
	return os.WriteFile(p, []byte(b.String()), 0o644)
}
