//go:build linux

package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

func TestParseRefAndFamiliar(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                       "docker.io/library/busybox:latest",
		"busybox:1.36":                  "docker.io/library/busybox:1.36",
		"user/app":                      "docker.io/user/app:latest",
		"localhost:5000/app":            "localhost:5000/app:latest",
		"127.0.0.1:5000/a/b:v1":         "127.0.0.1:5000/a/b:v1",
		"quay.io/x/y@sha256:" + hex64(): "quay.io/x/y@sha256:" + hex64(),
	} {
		got, err := ParseRef(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseRef(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b", "busybox:", ":tag", "-x"} {
		if _, err := ParseRef(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseRef(%q): %v, want InvalidArgument", bad, err)
		}
	}
	if got := Familiar("docker.io/library/busybox:latest"); got != "busybox:latest" {
		t.Errorf("Familiar: %q", got)
	}
	if err := notFound("busybox"); !errdefs.IsNotFound(err) || err.Error() != "No such image: busybox:latest" {
		t.Errorf("notFound: %v", err)
	}
}

func hex64() string { return strings.Repeat("ab", 32) }

func TestDecodeAuth(t *testing.T) {
	for _, enc := range []func([]byte) string{base64.URLEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString} {
		ac, err := DecodeAuth(enc([]byte(`{"username":"u","password":"p","serveraddress":"r"}`)))
		if err != nil || ac.Username != "u" || ac.Password != "p" {
			t.Fatalf("DecodeAuth: %+v %v", ac, err)
		}
	}
	if ac, err := DecodeAuth(""); ac != nil || err != nil {
		t.Fatalf("empty header: %v %v", ac, err)
	}
	for _, bad := range []string{"!!!", base64.URLEncoding.EncodeToString([]byte("{nope"))} {
		if _, err := DecodeAuth(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("DecodeAuth(%q): %v", bad, err)
		}
	}
}

func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	s := &Store{opts: Options{InsecureRegistries: []string{"registry.lan:5000", "10.0.0.9"}}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9": true, "[::1]:5000": true, "localhost:5000": true, "localhost": true,
		"registry.lan:5000": true, "10.0.0.9:443": true, "10.0.0.9": true,
		"registry.lan:5001": false, "192.168.1.2:5000": false, "docker.io": false, "evil.localhost.example": false,
	} {
		if got := s.plainHTTP(host); got != want {
			t.Errorf("plainHTTP(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSingleReference(t *testing.T) {
	d := "@sha256:" + hex64()
	for refs, want := range map[string]bool{
		"":                      false,
		"a:1":                   true,
		"a:1 a" + d:             true,
		"a" + d:                 true,
		"a:1 b:1":               false,
		"a:1 b" + d:             false,
		"a" + d + " b" + d:      false,
		"a:1 a" + d + " a:2":    false,
		"x/a:1 x/a" + d + " z":  false,
		"docker.io/a:1 a" + d:   true,
		"registry/a:1 a" + d:    false,
		"registry/a" + d + " a": false,
	} {
		var list []string
		for _, r := range strings.Fields(refs) {
			n, _ := parseNamed(r)
			if !strings.Contains(r, "@") && !strings.Contains(r, ":") {
				list = append(list, n.String()+":latest")
			} else {
				list = append(list, n.String())
			}
		}
		if got := singleReference(list); got != want {
			t.Errorf("singleReference(%q) = %v, want %v", refs, got, want)
		}
	}
}

// newStore opens a store under a temp dir, with an image loaded from a
// docker-archive and tagged tags.
func newStore(t *testing.T, tags ...string) (*Store, string) {
	t.Helper()
	testkit.RequireRoot(t)
	dir := t.TempDir()
	snaps, err := snapshot.Open(filepath.Join(dir, "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Root: filepath.Join(dir, "image"), Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	img := testkit.ImageFromLayers(t, v1.Config{}, testkit.LayerTar([]testkit.TarEntry{{Name: "f", Body: []byte("x")}}),
		testkit.LayerTar([]testkit.TarEntry{{Name: "g", Body: []byte("y")}}))
	refs := map[name.Reference]v1.Image{}
	for _, tg := range tags {
		r, _ := name.NewTag(tg)
		refs[r] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.Load(context.Background(), &buf, &out, nil); err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	return s, id.String()
}

func deleted(resp []image.DeleteResponse) (untagged, deletedIDs []string) {
	for _, r := range resp {
		if r.Untagged != "" {
			untagged = append(untagged, r.Untagged)
		}
		if r.Deleted != "" {
			deletedIDs = append(deletedIDs, r.Deleted)
		}
	}
	return
}

func TestRemoveFollowsDockerdRules(t *testing.T) {
	s, id := newStore(t, "app:1", "app:2", "other:1")
	short := strings.TrimPrefix(id, "sha256:")[:12]
	var running, stopped []string
	s.SetInUse(func(imageID string) ([]string, []string) {
		if imageID != id {
			t.Errorf("InUse asked about %s", imageID)
		}
		return running, stopped
	})
	ctx := context.Background()

	// By ID with names in two repositories: only with force.
	if _, err := s.Remove(ctx, short, false); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "referenced in multiple repositories") {
		t.Fatalf("rmi ID with several repositories: %v", err)
	}
	// One of several names: an untag, even with containers around.
	stopped = []string{"c0ffee000000aaaa"}
	resp, err := s.Remove(ctx, "app:2", false)
	if u, d := deleted(resp); err != nil || len(u) != 1 || u[0] != "app:2" || len(d) != 0 {
		t.Fatalf("rmi app:2: %v %v", resp, err)
	}
	if _, err := s.Remove(ctx, "other:1", false); err != nil {
		t.Fatal(err)
	}
	// The last name, used by a stopped container: refused unless forced.
	_, err = s.Remove(ctx, "app:1", false)
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), `unable to remove repository reference "app:1" (must force) - container c0ffee000000 is using its referenced image `+short) {
		t.Fatalf("rmi of the last name in use: %v", err)
	}
	// A running container blocks deletion even with force; the name goes.
	running = []string{"beef00000000bbbb"}
	if _, err := s.Remove(ctx, id, true); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "(cannot be forced) - image is being used by running container beef00000000") {
		t.Fatalf("rmi -f of an image in use by a running container: %v", err)
	}
	resp, err = s.Remove(ctx, "app:1", true)
	if u, d := deleted(resp); err != nil || len(u) != 1 || len(d) != 0 {
		t.Fatalf("rmi -f app:1 with a running container: %v %v", resp, err)
	}
	if img, err := s.Get(id); err != nil || len(img.RepoTags) != 0 {
		t.Fatalf("image gone or still tagged: %v %v", img, err)
	}
	// Stopped only: force deletes, and the layers go with it.
	running = nil
	if _, err := s.Remove(ctx, short, false); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "being used by stopped container c0ffee000000") {
		t.Fatalf("rmi of a dangling image a stopped container uses: %v", err)
	}
	resp, err = s.Remove(ctx, short, true)
	_, d := deleted(resp)
	if err != nil || len(d) != 3 || d[0] != id {
		t.Fatalf("rmi -f: %v %v (want the image and its two layers)", resp, err)
	}
	if layers, _ := s.snaps.Layers(); len(layers) != 0 {
		t.Fatalf("layers left: %v", layers)
	}
	if blobs, _ := s.content.list(); len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
	if _, err := s.Remove(ctx, short, true); !errdefs.IsNotFound(err) {
		t.Fatalf("rmi of a removed image: %v", err)
	}
}

func TestReopenCollectsLeftovers(t *testing.T) {
	s, id := newStore(t, "keep:1")
	root := s.opts.Root
	// What a crash between writing content and recording the image leaves.
	if _, err := s.content.put("", []byte("orphan blob")); err != nil {
		t.Fatal(err)
	}
	orphan := testkit.LayerTar([]testkit.TarEntry{{Name: "orphan", Body: []byte("z")}})
	if _, err := s.snaps.Apply(context.Background(), "", digestBytes(orphan), bytes.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "blobs", "tmp", "ingest-123"), []byte("half"), 0o600)

	s2, err := New(Options{Root: root, Snapshots: s.snaps})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s2.Get("keep:1")
	if err != nil || img.ID != id {
		t.Fatalf("image lost over a reopen: %v %v", img, err)
	}
	if s2.content.has(digestBytes([]byte("orphan blob"))) || s2.snaps.Has(digestBytes(orphan)) {
		t.Fatal("orphan content survived a reopen")
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "blobs", "tmp")); len(ents) != 0 {
		t.Fatalf("temp files survived: %v", ents)
	}
	// An image whose config blob vanished is dropped, not fatal.
	os.Remove(s2.content.path(id))
	s3, err := New(Options{Root: root, Snapshots: s.snaps})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Get("keep:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("broken image still listed: %v", err)
	}
}
