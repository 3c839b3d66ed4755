//go:build linux

package image

import (
	"context"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime/filters"
)

// Build steps commit images over images: the intermediate ones are hidden
// from lists, kept by dangling prunes, and go with the image built on them.
func TestParentsHideAndPruneIntermediateImages(t *testing.T) {
	s, base := newStore(t, "base:1")
	ctx := context.Background()
	commit := func(parent string, refs ...string) *Image {
		t.Helper()
		img, err := s.Commit(ctx, CommitOptions{Parent: parent, Config: v1.Config{Env: []string{"P=" + parent}},
			History: v1.History{CreatedBy: "ENV"}, Refs: refs})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	if _, err := s.snaps.Prepare("parents", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.snaps.Remove("parents") })
	step1 := commit(base)
	step2, err := s.Commit(ctx, CommitOptions{Parent: step1.ID, History: v1.History{CreatedBy: "RUN"},
		Layer: func(w io.Writer) (string, error) { return s.snaps.Diff("parents", w) }})
	if err != nil {
		t.Fatal(err)
	}
	final := commit(step2.ID, "app:1")
	if step1.Parent != base || final.Parent != step2.ID {
		t.Fatalf("parents: step1 %s final %s", step1.Parent, final.Parent)
	}
	ids := func(all bool) map[string]bool {
		list, err := s.Summaries(filters.Args{}, all)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, l := range list {
			m[l.ID] = true
		}
		return m
	}
	if got := ids(false); len(got) != 2 || !got[base] || !got[final.ID] {
		t.Fatalf("list shows intermediate images: %v", got)
	}
	if got := ids(true); len(got) != 4 {
		t.Fatalf("list -a: %v", got)
	}
	// A dangling prune keeps the intermediate images of a tagged one.
	if rep, err := s.Prune(ctx, filters.Args{}); err != nil || len(rep.ImagesDeleted) != 0 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	h, err := s.History("app:1")
	if err != nil {
		t.Fatal(err)
	}
	if h[0].ID != final.ID || h[1].ID != step2.ID || h[2].ID != step1.ID || h[3].ID != base {
		t.Fatalf("history IDs: %+v", h)
	}
	// Removing the image removes its untagged ancestors, not the tagged base.
	resp, err := s.Remove(ctx, "app:1", false)
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, r := range resp {
		deleted[r.Deleted] = true
	}
	if !deleted[final.ID] || !deleted[step2.ID] || !deleted[step1.ID] || deleted[base] {
		t.Fatalf("rmi: %+v", resp)
	}
	if got := ids(true); len(got) != 1 || !got[base] {
		t.Fatalf("left: %v", got)
	}
}

// A held image (a build's current step) survives prunes until released.
func TestHoldKeepsImageFromPrune(t *testing.T) {
	s, base := newStore(t, "base:1")
	ctx := context.Background()
	step, err := s.Commit(ctx, CommitOptions{Parent: base, Config: v1.Config{Env: []string{"A=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	release := s.Hold(step.ID)
	if rep, err := s.Prune(ctx, filters.Args{}); err != nil || len(rep.ImagesDeleted) != 0 {
		t.Fatalf("prune while held: %+v %v", rep, err)
	}
	release()
	if rep, err := s.Prune(ctx, filters.Args{}); err != nil || len(rep.ImagesDeleted) == 0 || rep.ImagesDeleted[0].Deleted != step.ID {
		t.Fatalf("prune after release: %+v %v", rep, err)
	}
}
