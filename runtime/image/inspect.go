//go:build linux

package image

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// The Engine API's views of images, with familiar names as dockerd shows them.

// Summaries is GET /images/json: images passing f (dangling, label,
// reference, before, since, until), newest first. Intermediate images
// (untagged, with children) are listed only with all, as by dockerd.
func (s *Store) Summaries(f filters.Args, all bool) ([]image.Summary, error) {
	if err := f.Validate("dangling", "label", "label!", "reference", "before", "since", "until"); err != nil {
		return nil, err
	}
	var dangling *bool
	for v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid filter 'dangling=%s'", v)
		}
		dangling = &b
	}
	var before, since, until time.Time
	for key, t := range map[string]*time.Time{"before": &before, "since": &since} {
		for v := range f[key] {
			img, err := s.Get(v)
			if err != nil {
				return nil, err
			}
			*t = img.Created
		}
	}
	for v := range f["until"] {
		t, err := parseTimestamp(v)
		if err != nil {
			return nil, err
		}
		until = t
	}
	s.mu.RLock()
	children := s.childrenLocked()
	s.mu.RUnlock()
	out := []image.Summary{}
	for _, img := range s.List() {
		tags, digests := img.RepoTags, img.RepoDigests
		if !all && len(tags) == 0 && len(digests) == 0 && children[img.ID] > 0 {
			continue
		}
		if dangling != nil && *dangling != (len(tags) == 0) {
			continue
		}
		if !before.IsZero() && !img.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !img.Created.After(since) {
			continue
		}
		if !until.IsZero() && !img.Created.Before(until) {
			continue
		}
		var labels map[string]string
		if img.Config != nil {
			labels = img.Config.Config.Labels
		}
		if !f.MatchLabels("label", labels) {
			continue
		}
		if f.Has("reference") {
			tags, digests = matchRefs(f.Get("reference"), tags), matchRefs(f.Get("reference"), digests)
			if len(tags) == 0 && len(digests) == 0 {
				continue
			}
		}
		sum := image.Summary{ID: img.ID, RepoTags: familiarAll(tags), RepoDigests: familiarAll(digests),
			Created: img.Created.Unix(), Size: img.Size, SharedSize: -1, Containers: -1, Labels: labels,
			ParentID: img.Parent}
		if labels == nil {
			sum.Labels = map[string]string{}
		}
		out = append(out, sum)
	}
	return out, nil
}

func matchRefs(patterns, refs []string) []string {
	var out []string
	for _, r := range refs {
		named, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		for _, p := range patterns {
			if ok, _ := reference.FamiliarMatch(p, named); ok {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// parseTimestamp reads the API's time filters: Unix seconds (with optional
// fraction), RFC 3339, or a duration before now ("10m").
func parseTimestamp(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || sec != "" {
		if n, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if ok {
				f, err := strconv.ParseFloat("0."+frac, 64)
				if err != nil {
					return time.Time{}, errdefs.InvalidArgument("invalid timestamp %q", v)
				}
				ns = int64(f * 1e9)
			}
			return time.Unix(n, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.InvalidArgument("invalid timestamp %q", v)
}

// Inspect is GET /images/{name}/json.
func (s *Store) Inspect(ref string) (image.InspectResponse, error) {
	img, err := s.Get(ref)
	if err != nil {
		return image.InspectResponse{}, err
	}
	cf := img.Config
	resp := image.InspectResponse{ID: img.ID, RepoTags: familiarAll(img.RepoTags), RepoDigests: familiarAll(img.RepoDigests),
		Author: cf.Author, Architecture: cf.Architecture, Variant: cf.Variant, Os: cf.OS, OsVersion: cf.OSVersion,
		Size: img.Size, RootFS: image.RootFS{Type: "layers"}, Metadata: image.Metadata{LastTagTime: img.LastTagTime}}
	if !cf.Created.IsZero() {
		resp.Created = cf.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range cf.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	// The config uses Docker's JSON names, so a round trip converts it.
	var conf dockerspec.DockerOCIImageConfig
	if b, err := json.Marshal(cf.Config); err == nil && json.Unmarshal(b, &conf) == nil {
		resp.Config = &conf
	}
	if img.ChainID != "" {
		if dirs, err := s.snaps.LayerDirs(img.ChainID); err == nil && len(dirs) > 0 {
			top := dirs[len(dirs)-1]
			data := map[string]string{"UpperDir": top, "MergedDir": filepath.Join(filepath.Dir(top), "merged"), "WorkDir": filepath.Join(filepath.Dir(top), "work")}
			var lower []string // top first, as overlay lists them
			for i := len(dirs) - 2; i >= 0; i-- {
				lower = append(lower, dirs[i])
			}
			if len(lower) > 0 {
				data["LowerDir"] = strings.Join(lower, ":")
			}
			resp.GraphDriver = &storage.DriverData{Name: "overlay2", Data: data}
		}
	}
	return resp, nil
}

// History is GET /images/{name}/history: one entry per history step,
// newest first, with the size of the layer each step made.
func (s *Store) History(ref string) ([]image.HistoryResponseItem, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	chain, err := s.snaps.Chain(img.ChainID)
	if err != nil {
		return nil, err
	}
	var out []image.HistoryResponseItem
	li := 0
	for _, h := range img.Config.History {
		item := image.HistoryResponseItem{ID: "<missing>", Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment}
		if !h.EmptyLayer {
			if li < len(chain) {
				item.Size = chain[li].Size
			}
			li++
		}
		out = append(out, item)
	}
	if len(img.Config.History) == 0 {
		for _, l := range chain {
			out = append(out, image.HistoryResponseItem{ID: "<missing>", Created: img.Created.Unix(), Size: l.Size})
		}
		if len(out) == 0 {
			out = append(out, image.HistoryResponseItem{Created: img.Created.Unix()})
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	out[0].ID = img.ID
	out[0].Tags = familiarAll(img.RepoTags)
	if out[0].Tags == nil {
		out[0].Tags = []string{}
	}
	// Ancestors still present name the step that made them, as dockerd
	// shows for locally built images.
	for p := img.Parent; p != ""; {
		pi, err := s.Get(p)
		if err != nil || pi.Config == nil {
			break
		}
		if i := len(out) - len(pi.Config.History); i > 0 && i < len(out) {
			out[i].ID = pi.ID
			out[i].Tags = familiarAll(pi.RepoTags)
			if out[i].Tags == nil {
				out[i].Tags = []string{}
			}
		}
		p = pi.Parent
	}
	return out, nil
}
