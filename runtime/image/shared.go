//go:build linux

package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client/pkg/progress"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// Shared is a local image lent to another process of the engine's (the
// BuildKit builder): the manifest of its blobs as stored and the directory
// holding them as ALGO/HEX files, for that process to hard-link.
type Shared struct {
	ID        string
	MediaType string
	Manifest  []byte
	BlobDir   string
}

// Share describes image ref for the builder. The blobs stay where they are;
// the builder links them into its own content store right away.
func (s *Store) Share(ref string) (Shared, error) {
	img, err := s.Get(ref)
	if err != nil {
		return Shared{}, err
	}
	_, raw, mt, err := s.archiveManifest(img.ID)
	if err != nil {
		return Shared{}, err
	}
	return Shared{ID: img.ID, MediaType: string(mt), Manifest: raw, BlobDir: s.content.root}, nil
}

// Import adds the image whose manifest (or index) has digest manifest and
// whose blobs are all files under dir as ALGO/HEX, as the BuildKit builder
// exports them, and tags it with names. Blobs are hard-linked into the store
// (copied and verified across file systems) and layers the snapshot store
// lacks are unpacked, so the image runs at once.
func (s *Store) Import(ctx context.Context, dir, manifest string, names []string) (*Image, error) {
	var tags []string
	for _, n := range names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid reference format: %s: %v", n, err)
		}
		if _, ok := named.(reference.Digested); ok {
			continue // a name by digest is the manifest's, which the engine keeps
		}
		tags = append(tags, reference.TagNameOnly(named).String())
	}
	blob := func(d string) string {
		return filepath.Join(dir, strings.Replace(d, ":", string(filepath.Separator), 1))
	}
	read := func(d string) ([]byte, error) {
		if !snapshot.ValidDigest(d) {
			return nil, errdefs.InvalidArgument("invalid digest %q", d)
		}
		b, err := os.ReadFile(blob(d))
		if err != nil {
			return nil, err
		}
		if got := digestBytes(b); got != d {
			return nil, errdefs.InvalidArgument("blob %s has digest %s", d, got)
		}
		return b, nil
	}
	rawManifest, err := read(manifest)
	if err != nil {
		return nil, fmt.Errorf("import: manifest: %w", err)
	}
	manifestDigest := manifest
	if mt := mediaTypeOf(rawManifest); mt.IsIndex() {
		d, err := platformManifest(rawManifest)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if rawManifest, err = read(d); err != nil {
			return nil, fmt.Errorf("import: manifest: %w", err)
		}
		manifestDigest = d
	}
	m, err := v1.ParseManifest(strings.NewReader(string(rawManifest)))
	if err != nil {
		return nil, errdefs.InvalidArgument("import: invalid manifest: %v", err)
	}
	rawConfig, err := read(m.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("import: config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawConfig)))
	if err != nil {
		return nil, errdefs.InvalidArgument("import: invalid image config: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.InvalidArgument("import: image has %d layers but its config lists %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	rec := record{ID: m.Config.Digest.String(), Manifest: manifestDigest}
	for i, l := range m.Layers {
		if !snapshot.ValidDigest(l.Digest.String()) || !snapshot.ValidDigest(cfg.RootFS.DiffIDs[i].String()) {
			return nil, errdefs.InvalidArgument("import: layer %d: unsupported digest %s", i, l.Digest)
		}
		rec.Layers = append(rec.Layers, layerRecord{Digest: l.Digest.String(), MediaType: string(l.MediaType),
			Size: l.Size, DiffID: cfg.RootFS.DiffIDs[i].String()})
	}
	if s.unchanged(rec, tags) {
		// A rebuild with nothing changed: the image and its tags are here.
		return s.Get(rec.ID)
	}
	chains := chainIDs(rec.Layers)
	leased := append([]string{rec.ID, rec.Manifest}, chains...)
	for _, l := range rec.Layers {
		leased = append(leased, l.Digest)
	}
	defer s.lease(leased...)()
	if _, err := s.content.put(rec.ID, rawConfig); err != nil {
		return nil, err
	}
	if _, err := s.content.put(rec.Manifest, rawManifest); err != nil {
		return nil, err
	}
	for i, l := range rec.Layers {
		if err := s.importLayer(ctx, blob(l.Digest), l, chains, i); err != nil {
			return nil, err
		}
	}
	img, _, err := s.commit(rec, tags...)
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		s.event(events.ActionTag, rec.ID, t)
	}
	return img, nil
}

// unchanged reports whether image rec is stored with every blob and tag
// already, so that importing it again would write nothing new.
func (s *Store) unchanged(rec record, tags []string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.images[rec.ID]
	if e == nil || e.rec.Manifest != rec.Manifest || !s.snaps.Has(e.chainID) {
		return false
	}
	for _, t := range tags {
		if s.refs.refs[t] != rec.ID {
			return false
		}
	}
	return true
}

// importLayer links layer i's blob into the store and unpacks its chain
// unless the snapshot store has it (a base image's layers always do).
func (s *Store) importLayer(ctx context.Context, src string, l layerRecord, chains []string, i int) error {
	unlock := s.fetches.Lock(l.Digest)
	defer unlock()
	if !s.content.has(l.Digest) {
		if err := s.content.link(src, l.Digest); err != nil {
			return fmt.Errorf("import: layer %s: %w", shortID(l.Digest), err)
		}
	}
	if s.snaps.Has(chains[i]) {
		return nil
	}
	parent := ""
	if i > 0 {
		parent = chains[i-1]
	}
	return s.applyBlob(ctx, progress.DiscardOutput(), l, parent)
}

// link gives the file at src, whose content has digest d, its name in the
// store: a hard link, or across file systems a verified copy.
func (c *content) link(src, d string) error {
	if !snapshot.ValidDigest(d) {
		return errdefs.InvalidArgument("invalid digest %q", d)
	}
	err := os.Link(src, c.path(d))
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := c.newIngest()
	if err != nil {
		return err
	}
	defer w.discard()
	if _, err := io.Copy(w, f); err != nil {
		return err
	}
	_, err = w.commit(d)
	return err
}

// mediaTypeOf reads a manifest's declared media type (OCI manifests may
// leave it out: an index says so by having "manifests").
func mediaTypeOf(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests []any           `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ""
	}
	if probe.MediaType == "" && probe.Manifests != nil {
		return types.OCIImageIndex
	}
	return probe.MediaType
}

// platformManifest picks this machine's image manifest from an index,
// skipping attestation manifests (BuildKit's provenance and SBOMs).
func platformManifest(raw []byte) (string, error) {
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return "", errdefs.InvalidArgument("invalid index: %v", err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH) {
			return d.Digest.String(), nil
		}
	}
	return "", errdefs.InvalidArgument("the index lists no image for linux/%s", runtime.GOARCH)
}
