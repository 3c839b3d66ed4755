//go:build linux

package image

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// Remove is `docker rmi`, with dockerd's rules. Given a name, it removes that
// reference, and the image too once nothing else names it. Given an ID, it
// removes the image with its references if they all belong to one
// repository. An image used by a running container is never deleted; one used
// by a stopped container, or named in several repositories, only with force.
// The answer lists what was untagged and deleted (image ID, then the layers
// freed).
func (s *Store) Remove(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.resolveLocked(ref)
	if err != nil {
		return nil, err
	}
	id := e.rec.ID
	running, stopped := s.usersLocked(id)
	var out []image.DeleteResponse
	quiet := false // a name was removed: a remaining hard conflict is not an error
	if byName := s.nameRef(ref, id); byName != "" {
		if !force && singleReference(s.refsOf(id)) && len(running)+len(stopped) > 0 {
			return nil, errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				ref, shortID(first(running, stopped)), shortID(id))
		}
		out = append(out, s.untagLocked(id, byName))
		// Removing a repository's last tag also drops its digests.
		if !strings.Contains(byName, "@") {
			repo := repoName(byName)
			tags, digests := s.refs.of(id)
			sameRepoTag := false
			for _, t := range tags {
				sameRepoTag = sameRepoTag || repoName(t) == repo
			}
			if !sameRepoTag {
				for _, d := range digests {
					if repoName(d) == repo {
						out = append(out, s.untagLocked(id, d))
					}
				}
			}
		}
		if err := s.refs.save(); err != nil {
			return out, err
		}
		if len(s.refsOf(id)) > 0 {
			return out, nil
		}
		quiet = true
	} else if refs := s.refsOf(id); singleReference(refs) {
		if err := conflict(id, running, stopped, nil, force); err != nil {
			return nil, err
		}
		for _, r := range refs {
			out = append(out, s.untagLocked(id, r))
		}
		if err := s.refs.save(); err != nil {
			return out, err
		}
	}
	if err := conflict(id, running, stopped, s.refsOf(id), force); err != nil {
		if quiet {
			return out, nil
		}
		return nil, err
	}
	for _, r := range s.refsOf(id) { // force: every remaining name goes
		out = append(out, s.untagLocked(id, r))
	}
	if err := s.refs.save(); err != nil {
		return out, err
	}
	deleted, err := s.deleteLocked(id)
	return append(out, deleted...), err
}

// conflict is dockerd's check before deleting an image: running containers
// always block; stopped ones and names in other repositories unless forced.
func conflict(id string, running, stopped, refs []string, force bool) error {
	if len(running) > 0 {
		return errdefs.Conflict("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", shortID(id), shortID(running[0]))
	}
	if force {
		return nil
	}
	if len(refs) > 0 {
		return errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id))
	}
	if len(stopped) > 0 {
		return errdefs.Conflict("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", shortID(id), shortID(stopped[0]))
	}
	return nil
}

// nameRef returns the normalized reference ref names, if ref is a name that
// points at id (rather than an ID or ID prefix).
func (s *Store) nameRef(ref, id string) string {
	if fullIDRE().MatchString(ref) {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	norm := reference.TagNameOnly(named).String()
	if s.refs.refs[norm] == id {
		return norm
	}
	return ""
}

func (s *Store) refsOf(id string) []string {
	tags, digests := s.refs.of(id)
	return append(tags, digests...)
}

// singleReference is dockerd's isSingleReference: at most one tag, and any
// digests in that tag's repository only.
func singleReference(refs []string) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	single := ""
	digestRepos := map[string]bool{}
	for _, r := range refs {
		if strings.Contains(r, "@") {
			digestRepos[repoName(r)] = true
		} else if single == "" {
			single = r
		} else {
			return false
		}
	}
	if single == "" {
		single = refs[0]
	}
	return len(digestRepos) == 1 && digestRepos[repoName(single)]
}

func repoName(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return named.Name()
}

func first(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}

// untagLocked drops one reference (the caller saves the ref store).
func (s *Store) untagLocked(id, ref string) image.DeleteResponse {
	delete(s.refs.refs, ref)
	s.event(events.ActionUnTag, id, id) // named by the image's ID, as dockerd names it
	return image.DeleteResponse{Untagged: Familiar(ref)}
}

func (s *Store) usersLocked(id string) (running, stopped []string) {
	if s.opts.InUse == nil {
		return nil, nil
	}
	return s.opts.InUse(id)
}

// Prune removes images no container uses: dangling ones (no tags) by
// default, every unused one with dangling=false; until and label filters
// narrow the set. SpaceReclaimed counts the unpacked layers freed.
func (s *Store) Prune(ctx context.Context, f filters.Args) (image.PruneReport, error) {
	var report image.PruneReport
	if err := f.Validate("dangling", "until", "label", "label!"); err != nil {
		return report, err
	}
	danglingOnly := true
	for v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return report, errdefs.InvalidArgument("invalid filter 'dangling=%s'", v)
		}
		danglingOnly = b
	}
	var until time.Time
	for v := range f["until"] {
		t, err := parseTimestamp(v)
		if err != nil {
			return report, err
		}
		until = t
	}
	sizes := map[string]int64{}
	if layers, err := s.snaps.Layers(); err == nil {
		for _, l := range layers {
			sizes[l.ChainID] = l.Size
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	children := s.childrenLocked()
	for id, e := range s.images {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		tags, _ := s.refs.of(id)
		// Dangling means an untagged head: intermediate images go with
		// the last image built on them.
		if danglingOnly && (len(tags) > 0 || children[id] > 0) {
			continue
		}
		if s.leases[id] > 0 {
			continue // held by an operation in progress (a build)
		}
		if !f.MatchLabels("label", e.cfg.Config.Labels) {
			continue
		}
		if !until.IsZero() && !e.cfg.Created.Before(until) {
			continue
		}
		if running, stopped := s.usersLocked(id); len(running)+len(stopped) > 0 {
			continue
		}
		for _, r := range s.refsOf(id) {
			report.ImagesDeleted = append(report.ImagesDeleted, s.untagLocked(id, r))
		}
		if err := s.refs.save(); err != nil {
			return report, err
		}
		deleted, err := s.deleteLocked(id)
		report.ImagesDeleted = append(report.ImagesDeleted, deleted...)
		for _, d := range deleted {
			report.SpaceReclaimed += uint64(sizes[d.Deleted]) // layers; images count 0
		}
		if err != nil {
			return report, err
		}
	}
	if s.opts.Events != nil {
		s.opts.Events.Publish(events.ImageEventType, events.ActionPrune, "",
			map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)})
	}
	return report, nil
}
