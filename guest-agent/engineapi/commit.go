//go:build linux

package engineapi

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/image"
)

// commit is POST /commit (docker commit): the container's writable layer
// becomes a new image over the container's, with the container's config,
// the request body's overrides and --change instructions.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("container")
	if name == "" {
		return errdefs.InvalidArgument("container is required")
	}
	var override ctr.Config
	if err := decodeJSON(r, &override); err != nil {
		return err
	}
	var refs []string
	if repo := q.Get("repo"); repo != "" {
		named, err := reference.ParseNormalizedNamed(repo)
		if err != nil {
			return errdefs.InvalidArgument("invalid reference format: %q", repo)
		}
		if tag := q.Get("tag"); tag != "" {
			if named, err = reference.WithTag(reference.TrimNamed(named), tag); err != nil {
				return errdefs.InvalidArgument("invalid tag %q: %v", tag, err)
			}
		}
		refs = append(refs, reference.TagNameOnly(named).String())
	}
	insp, err := s.eng.Containers.Inspect(r.Context(), name, false)
	if err != nil {
		return err
	}
	cfg, err := commitConfig(insp.Config, &override)
	if err != nil {
		return err
	}
	if err := image.ApplyChanges(&cfg, q["changes"]); err != nil {
		return err
	}
	// A running container is paused while its layer is read, so the image
	// is one consistent state of it.
	if boolValueOr(r, "pause", true) && insp.State != nil && insp.State.Running && !insp.State.Paused {
		if err := s.eng.Containers.Pause(r.Context(), insp.ID); err != nil {
			return err
		}
		defer s.eng.Containers.Unpause(r.Context(), insp.ID)
	}
	img, err := s.eng.Images.Commit(r.Context(), image.CommitOptions{
		Parent:          insp.Image,
		Layer:           func(w io.Writer) (string, error) { return s.eng.Snapshots.Diff(insp.ID, w) },
		Config:          cfg,
		History:         v1.History{CreatedBy: strings.TrimSpace(insp.Path + " " + strings.Join(insp.Args, " ")), Comment: q.Get("comment")},
		Author:          q.Get("author"),
		Comment:         q.Get("comment"),
		Container:       insp.ID,
		ContainerConfig: insp.Config,
		Refs:            refs,
	})
	if err != nil {
		return err
	}
	// The container's attributes (its labels, name and image), then the
	// commit's, as dockerd sends them.
	attrs := map[string]string{}
	if insp.Config != nil {
		maps.Copy(attrs, insp.Config.Labels)
		attrs["image"] = insp.Config.Image
	}
	attrs["name"], attrs["imageID"], attrs["comment"] = strings.TrimPrefix(insp.Name, "/"), img.ID, q.Get("comment")
	if len(refs) > 0 {
		attrs["imageRef"] = image.Familiar(refs[0])
	}
	s.eng.Events.Publish(events.ContainerEventType, events.ActionCommit, insp.ID, attrs)
	return writeJSON(w, http.StatusCreated, ctr.CommitResponse{ID: img.ID})
}

// commitConfig is the container's config with the non-empty fields of the
// request's config laid over it, in the image config's form.
func commitConfig(base, override *ctr.Config) (v1.Config, error) {
	var cfg, over v1.Config
	if base != nil {
		if err := convertJSON(base, &cfg); err != nil {
			return cfg, err
		}
	}
	if err := convertJSON(override, &over); err != nil {
		return cfg, err
	}
	if len(over.Cmd) > 0 {
		cfg.Cmd = over.Cmd
	}
	if len(over.Entrypoint) > 0 {
		cfg.Entrypoint = over.Entrypoint
	}
	if len(over.Env) > 0 {
		// The request's entries first, then the container's it does not
		// name, as dockerd merges them.
		named := map[string]bool{}
		for _, e := range over.Env {
			k, _, _ := strings.Cut(e, "=")
			named[k] = true
		}
		env := append([]string(nil), over.Env...)
		for _, e := range cfg.Env {
			if k, _, _ := strings.Cut(e, "="); !named[k] {
				env = append(env, e)
			}
		}
		cfg.Env = env
	}
	for k, v := range over.Labels {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
	for p := range over.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for v := range over.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	if over.WorkingDir != "" {
		cfg.WorkingDir = over.WorkingDir
	}
	if over.User != "" {
		cfg.User = over.User
	}
	if over.StopSignal != "" {
		cfg.StopSignal = over.StopSignal
	}
	cfg.Image = "" // the parent is recorded by the layers, not by name
	return cfg, nil
}

func convertJSON(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
