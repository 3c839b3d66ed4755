//go:build linux

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/distribution/reference"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/fsutil"
)

// ParseRef normalizes a reference as Docker does: "busybox" is
// docker.io/library/busybox:latest, a name without tag or digest gets
// ":latest". Bad input is an InvalidArgument.
func ParseRef(s string) (reference.Named, error) {
	named, err := parseNamed(s)
	if err != nil {
		return nil, err
	}
	return reference.TagNameOnly(named), nil
}

func parseNamed(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid reference format: %q: %v", s, err)
	}
	return named, nil
}

// Familiar is the short form users see ("busybox:latest" for
// docker.io/library/busybox:latest); strings that are not references are
// returned as they are.
func Familiar(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(named)
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, Familiar(r))
	}
	return out
}

// notFound is dockerd's "No such image: busybox:latest".
func notFound(ref string) error {
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		return errdefs.NotFound("No such image: %s", reference.FamiliarString(reference.TagNameOnly(named)))
	}
	return errdefs.NotFound("No such image: %s", ref)
}

// refStore maps references (tags "docker.io/library/busybox:latest" and
// digests "docker.io/library/busybox@sha256:…") to image IDs, kept in one
// JSON file rewritten atomically on each change, as dockerd's
// repositories.json is.
type refStore struct {
	path string
	refs map[string]string
}

func loadRefs(path string) (*refStore, error) {
	rs := &refStore{path: path, refs: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rs, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &rs.refs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

func (rs *refStore) save() error {
	if err := fsutil.WriteJSONAtomic(rs.path, rs.refs, 0o600); err != nil {
		return fmt.Errorf("save references: %w", err)
	}
	return nil
}

// of returns the tags and digests pointing at id, sorted.
func (rs *refStore) of(id string) (tags, digests []string) {
	for ref, target := range rs.refs {
		if target != id {
			continue
		}
		if strings.Contains(ref, "@") {
			digests = append(digests, ref)
		} else {
			tags = append(tags, ref)
		}
	}
	sort.Strings(tags)
	sort.Strings(digests)
	return tags, digests
}

// digestRef is name@digest for a repository name.
func digestRef(named reference.Named, d string) string {
	return named.Name() + "@" + d
}
