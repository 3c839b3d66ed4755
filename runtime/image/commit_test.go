//go:build linux

package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime/errdefs"
)

func TestApplyChanges(t *testing.T) {
	cfg := v1.Config{Env: []string{"PATH=/bin", "A=1"}, WorkingDir: "/app"}
	err := ApplyChanges(&cfg, []string{
		`CMD ["cat", "/x"]`,
		`entrypoint echo hi`,
		`ENV A=2 B="two words"`,
		`ENV LEGACY value with spaces`,
		`LABEL com.example.a=1 "b=x y"`,
		`EXPOSE 80 53/UDP`,
		`VOLUME ["/data", "/logs"]`,
		`WORKDIR sub`,
		`USER nobody`,
		`STOPSIGNAL SIGINT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Cmd: []string{"cat", "/x"}, Entrypoint: []string{"/bin/sh", "-c", "echo hi"},
		Env:          []string{"PATH=/bin", "A=2", "B=two words", "LEGACY=value with spaces"},
		Labels:       map[string]string{"com.example.a": "1", "b": "x y"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}, "/logs": {}},
		WorkingDir:   "/app/sub", User: "nobody", StopSignal: "SIGINT",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("ApplyChanges:\n got %+v\nwant %+v", cfg, want)
	}
	for _, bad := range []string{"RUN rm -rf /", "FROM x", `ENV "unterminated`, "LABEL novalue", "EXPOSE"} {
		if err := ApplyChanges(&cfg, []string{bad}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ApplyChanges(%q): %v, want InvalidArgument", bad, err)
		}
	}
}

func TestCommitMakesImageFromContainerChanges(t *testing.T) {
	s, parent := newStore(t, "base:1")
	base, err := s.Get(parent)
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.snaps.Prepare("step1", base.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.snaps.Remove("step1") })
	os.WriteFile(filepath.Join(root, "made"), []byte("hi"), 0o644)
	os.Remove(filepath.Join(root, "f"))

	img, err := s.Commit(context.Background(), CommitOptions{
		Parent:  "base:1",
		Layer:   func(w io.Writer) (string, error) { return s.snaps.Diff("step1", w) },
		Config:  v1.Config{Cmd: []string{"cat", "/made"}},
		History: v1.History{CreatedBy: "sh -c echo", Comment: "first"},
		Author:  "tester",
		Refs:    []string{"committed:v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("committed:v1"); got == nil || got.ID != img.ID {
		t.Fatalf("tag not set: %v", got)
	}
	cf := img.Config
	if len(cf.RootFS.DiffIDs) != 3 || cf.Author != "tester" || cf.Config.Cmd[0] != "cat" {
		t.Fatalf("config: %+v", cf)
	}
	if h := cf.History[len(cf.History)-1]; h.Comment != "first" || h.EmptyLayer || h.Author != "tester" {
		t.Fatalf("history: %+v", h)
	}
	// The new chain shows the changes.
	root2, err := s.snaps.Prepare("check", img.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.snaps.Remove("check") })
	if b, _ := os.ReadFile(filepath.Join(root2, "made")); string(b) != "hi" {
		t.Fatalf("made: %q", b)
	}
	if _, err := os.Stat(filepath.Join(root2, "f")); !os.IsNotExist(err) {
		t.Fatalf("deleted file is back: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root2, "g")); err != nil {
		t.Fatalf("parent file lost: %v", err)
	}

	// A config-only step adds history, not a layer.
	img2, err := s.Commit(context.Background(), CommitOptions{Parent: img.ID, Config: v1.Config{Env: []string{"X=1"}},
		History: v1.History{CreatedBy: "ENV X=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if img2.ChainID != img.ChainID || !img2.Config.History[len(img2.Config.History)-1].EmptyLayer {
		t.Fatalf("config-only commit: chain %s history %+v", img2.ChainID, img2.Config.History)
	}
	if len(img2.RepoTags) != 0 {
		t.Fatalf("untagged commit got tags %v", img2.RepoTags)
	}
	// A layer function that lies about its diff ID is refused.
	_, err = s.Commit(context.Background(), CommitOptions{Parent: img.ID, Refs: []string{"bad:1"},
		Layer: func(w io.Writer) (string, error) { w.Write(make([]byte, 1024)); return "sha256:" + hex64(), nil }})
	if err == nil {
		t.Fatal("commit with a wrong diff ID succeeded")
	}
	if _, err := s.Get("bad:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("a failed commit got its tag: %v", err)
	}
}
