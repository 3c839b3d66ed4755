//go:build linux

package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client/pkg/progress"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// CommitOptions describe a new image made from a parent and one step:
// `docker commit`, and each step of a build.
type CommitOptions struct {
	// Parent is the image built on (ID or reference); "" starts from scratch.
	Parent string
	// Layer writes the step's changes as an uncompressed layer tar and
	// returns its diff ID (snapshot.Store.Diff does both); nil for a step
	// that only changes the config (ENV, CMD …).
	Layer func(w io.Writer) (diffID string, err error)
	// Config is the new image's container config, in full.
	Config v1.Config
	// History describes the step (CreatedBy, Comment); Created defaults to
	// now and EmptyLayer follows Layer.
	History v1.History
	Author  string
	// Platform is a new image's OS and architecture when it has no
	// parent (docker import); default linux and the engine's.
	Platform v1.Platform
	// Comment, Container and ContainerConfig are what dockerd records of a
	// commit: its message, and the container it was made from with that
	// container's config (shown by inspect in API versions before 1.45).
	Comment         string
	Container       string
	ContainerConfig any
	// Refs are tagged once the image is complete, never before.
	Refs []string
}

// emptyLayerDiffID is the diff ID of a layer with no entries (a tar of
// two zero blocks).
const emptyLayerDiffID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

// commitConfig is an image config with the fields dockerd adds to the
// OCI ones for a commit.
type commitConfig struct {
	*v1.ConfigFile
	Comment         string `json:"comment,omitempty"`
	ContainerConfig any    `json:"container_config,omitempty"`
}

// Commit makes a new image from opts and returns it. The layer is stored as
// a plain tar blob (compressed when first pushed) and unpacked as a new
// chain over the parent's.
func (s *Store) Commit(ctx context.Context, opts CommitOptions) (*Image, error) {
	var refs []string
	for _, r := range opts.Refs {
		named, err := ParseRef(r)
		if err != nil {
			return nil, err
		}
		if strings.Contains(named.String(), "@") {
			return nil, errdefs.InvalidArgument("refusing to create a tag with a digest reference")
		}
		refs = append(refs, named.String())
	}
	cfg := &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}
	if p := opts.Platform; p.Architecture != "" {
		cfg.OS, cfg.Architecture, cfg.Variant, cfg.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	}
	var rec record
	chain := ""
	if opts.Parent != "" {
		s.mu.RLock()
		e, err := s.resolveLocked(opts.Parent)
		if err == nil {
			cfg = e.cfg.DeepCopy()
			rec.Parent = e.rec.ID
			rec.Layers = append(rec.Layers, e.rec.Layers...)
			chain = e.chainID
		}
		s.mu.RUnlock()
		if err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	h := opts.History
	if h.Created.IsZero() {
		h.Created = v1.Time{Time: now}
	}
	h.EmptyLayer = opts.Layer == nil
	if h.Author == "" {
		h.Author = opts.Author
	}
	if opts.Layer != nil {
		l, release, err := s.storeLayer(ctx, opts.Layer, chain)
		if err != nil {
			return nil, err
		}
		defer release()
		if l.DiffID == emptyLayerDiffID {
			// A step that changed nothing adds no layer, as with dockerd.
			h.EmptyLayer = true
		} else {
			rec.Layers = append(rec.Layers, l)
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, mustHash(l.DiffID))
		}
	}
	cfg.Config = opts.Config
	cfg.Created = v1.Time{Time: now}
	cfg.Author = opts.Author
	cfg.History = append(cfg.History, h)
	cfg.RootFS.Type = "layers"
	cfg.Container = opts.Container
	raw, err := json.Marshal(commitConfig{ConfigFile: cfg, Comment: opts.Comment, ContainerConfig: opts.ContainerConfig})
	if err != nil {
		return nil, err
	}
	rec.ID = digestBytes(raw)
	defer s.lease(rec.ID)()
	if _, err := s.content.put(rec.ID, raw); err != nil {
		return nil, err
	}
	img, _, err := s.commit(rec, refs...)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		s.event(events.ActionTag, rec.ID, r)
	}
	return img, nil
}

// storeLayer writes a new layer through write into the blob store, checks
// the diff ID it reports, and unpacks it over parent. The blob and chain
// stay leased until release.
func (s *Store) storeLayer(ctx context.Context, write func(io.Writer) (string, error), parent string) (layerRecord, func(), error) {
	var l layerRecord
	ing, err := s.content.newIngest()
	if err != nil {
		return l, nil, err
	}
	defer ing.discard()
	diffID, err := write(ing)
	if err != nil {
		return l, nil, fmt.Errorf("write layer: %w", err)
	}
	if got := ing.digest(); diffID != got {
		return l, nil, fmt.Errorf("write layer: reported diff ID %s, content is %s", diffID, got)
	}
	l = layerRecord{Digest: diffID, MediaType: string(types.OCIUncompressedLayer), Size: ing.n, DiffID: diffID}
	release := s.lease(diffID, snapshot.ChainID(parent, diffID))
	if _, err := ing.commit(diffID); err != nil {
		release()
		return l, nil, err
	}
	if err := s.applyBlob(ctx, progress.DiscardOutput(), l, parent); err != nil {
		release()
		return l, nil, err
	}
	return l, release, nil
}
