//go:build linux

package container

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/image"
)

func TestMain(m *testing.M) {
	// libcontainer re-executes the test binary as the container's init.
	if IsInit() {
		Init()
		os.Exit(255)
	}
	os.Exit(m.Run())
}

// overlayRootFS is a minimal RootFS for these tests: one unpacked busybox
// lower layer and an overlay per container, really mounted.
type overlayRootFS struct {
	base, lower string
	mu          sync.Mutex
}

func (o *overlayRootFS) Prepare(key, chainID string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := filepath.Join(o.base, key)
	merged := filepath.Join(d, "merged")
	for _, sub := range []string{"upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return "", err
		}
	}
	if ok, _ := mountinfo.Mounted(merged); ok {
		return merged, nil
	}
	opts := "lowerdir=" + o.lower + ",upperdir=" + filepath.Join(d, "upper") + ",workdir=" + filepath.Join(d, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "", err
	}
	return merged, nil
}

func (o *overlayRootFS) Unmount(key string) error {
	merged := filepath.Join(o.base, key, "merged")
	if ok, _ := mountinfo.Mounted(merged); ok {
		return unix.Unmount(merged, unix.MNT_DETACH)
	}
	return nil
}

func (o *overlayRootFS) Remove(key string) error {
	if err := o.Unmount(key); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(o.base, key))
}

// unpack writes trusted test entries into dir.
func unpack(t *testing.T, dir string, entries []testkit.TarEntry) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(testkit.LayerTar(entries)))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, os.FileMode(h.Mode))
		case tar.TypeSymlink:
			os.Symlink(h.Linkname, p)
		default:
			b, _ := io.ReadAll(tr)
			os.WriteFile(p, b, os.FileMode(h.Mode))
		}
		os.Lchown(p, h.Uid, h.Gid)
	}
}

type env struct {
	m      *Manager
	cfg    Config
	events *events.Bus
	img    *image.Image
}

// newEnv starts a Manager on a fresh root with a busybox image called
// "busybox" (any reference resolves to it except "missing").
func newEnv(t *testing.T) *env {
	t.Helper()
	testkit.RequireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	os.MkdirAll(lower, 0o755)
	unpack(t, lower, testkit.BusyboxEntries(t))
	var id [4]byte
	rand.Read(id[:])
	img := &image.Image{ID: "sha256:" + strings.Repeat("ab", 32), ChainID: "sha256:busybox",
		Config: &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=" + testkit.DefaultPath}}}}
	bus := events.New()
	cfg := Config{
		Root: filepath.Join(base, "containers"), RuntimeRoot: filepath.Join(base, "runc"),
		CgroupParent: "/berth-unit-" + hex.EncodeToString(id[:]),
		Images: func(ctx context.Context, ref string) (*image.Image, error) {
			if ref == "missing" {
				return nil, errdefs.NotFound("No such image: %s", ref)
			}
			return img, nil
		},
		RootFS: &overlayRootFS{base: filepath.Join(base, "rootfs"), lower: lower},
		Events: bus,
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{m: m, cfg: cfg, events: bus, img: img}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range e.m.All() {
			e.m.Remove(ctx, c.ID(), RemoveOptions{Force: true})
		}
		if err := e.m.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		testkit.RemoveCgroup(cfg.CgroupParent)
	})
	return e
}

// capture is an attach that collects output.
type capture struct {
	mu          sync.Mutex
	out, errOut bytes.Buffer
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *capture) stdout() string { c.mu.Lock(); defer c.mu.Unlock(); return c.out.String() }
func (c *capture) stderr() string { c.mu.Lock(); defer c.mu.Unlock(); return c.errOut.String() }

// runResult is what run returns: output, exit code, the container ID.
type runResult struct {
	ID     string
	Stdout string
	Stderr string
	Code   int
}

// run is `docker run` without -d: create, attach, wait, start, and collect.
func (e *env) run(t *testing.T, opts CreateOptions, stdin io.Reader) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, _, err := e.m.Create(ctx, opts)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	at, err := e.m.Attach(id, AttachOptions{Stdin: stdin != nil, Stdout: true, Stderr: true, Stream: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	wait, err := e.m.Wait(ctx, id, "next-exit")
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	var cap capture
	attachDone := make(chan error, 1)
	go func() {
		attachDone <- at.Run(ctx, stdin, lockedWriter{&cap.mu, &cap.out}, lockedWriter{&cap.mu, &cap.errOut})
	}()
	if err := e.m.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	res := <-wait
	if res.Err != nil {
		t.Fatalf("wait: %v", res.Err)
	}
	if err := <-attachDone; err != nil {
		t.Fatalf("attach: %v", err)
	}
	return runResult{ID: id, Stdout: cap.stdout(), Stderr: cap.stderr(), Code: res.ExitCode}
}

func cmd(args ...string) CreateOptions {
	return CreateOptions{Config: &ctrConfig{Image: "busybox", Cmd: args}}
}
