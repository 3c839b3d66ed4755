//go:build linux

package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
)

// Parents, as dockerd keeps them: an image committed over another (docker
// commit, each step of a build) records it as its parent. An untagged image
// with children is intermediate: lists hide it unless asked for all images,
// dangling prunes keep it, and it goes when the last image needing it does.

// childrenLocked counts the children of every image that has some.
func (s *Store) childrenLocked() map[string]int {
	n := map[string]int{}
	for _, e := range s.images {
		if e.rec.Parent != "" {
			n[e.rec.Parent]++
		}
	}
	return n
}

// deleteLocked removes image id's record, then its ancestors that nothing
// needs any more (untagged, childless, no container), then whatever content
// and layers no image needs. It lists the images deleted, then the layers.
func (s *Store) deleteLocked(id string) ([]image.DeleteResponse, error) {
	var out []image.DeleteResponse
	for id != "" {
		e := s.images[id]
		if err := os.Remove(s.recordPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("delete image %s: %w", id, err)
		}
		delete(s.images, id)
		s.event(events.ActionDelete, id, "")
		s.labelsMu.Lock()
		delete(s.labels, id)
		s.labelsMu.Unlock()
		out = append(out, image.DeleteResponse{Deleted: id})
		id = ""
		if e != nil && e.rec.Parent != "" && s.unneededLocked(e.rec.Parent) {
			id = e.rec.Parent
		}
	}
	removed, err := s.collectLocked()
	for _, c := range removed {
		out = append(out, image.DeleteResponse{Deleted: c})
	}
	return out, err
}

// unneededLocked reports whether image id exists and nothing keeps it: no
// reference, no child, no container.
func (s *Store) unneededLocked(id string) bool {
	if s.images[id] == nil || len(s.refsOf(id)) > 0 || s.childrenLocked()[id] > 0 {
		return false
	}
	running, stopped := s.usersLocked(id)
	return len(running)+len(stopped) == 0
}

// Hold keeps image id from prunes until release: a build holds the images
// of its steps, which are dangling until the next step builds on them.
func (s *Store) Hold(id string) (release func()) { return s.lease(id) }
