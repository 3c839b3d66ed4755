//go:build linux

package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/progress"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// PushOptions configure Push.
type PushOptions struct {
	Auth *registry.AuthConfig
}

// PushResult is the aux message that ends each pushed tag, as dockerd sends it.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// Push uploads the image ref names (every local tag of the repository when
// ref has no tag) and writes dockerd's progress stream to out: "The push
// refers to repository […]", per layer "Preparing", "Pushing", "Pushed" or
// "Layer already exists", then "TAG: digest: … size: …".
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions, out progress.Output) error {
	if out == nil {
		out = progress.DiscardOutput()
	}
	named, err := parseNamed(ref)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return errdefs.InvalidArgument("cannot push a digest reference (%s): push a tag", reference.FamiliarString(named))
	}
	var tags []reference.NamedTagged
	if t, ok := named.(reference.NamedTagged); ok {
		tags = append(tags, t)
	} else {
		s.mu.RLock()
		for r := range s.refs.refs {
			if n, err := reference.ParseNormalizedNamed(r); err == nil && n.Name() == named.Name() {
				if t, ok := n.(reference.NamedTagged); ok {
					tags = append(tags, t)
				}
			}
		}
		s.mu.RUnlock()
		sort.Slice(tags, func(i, j int) bool { return tags[i].Tag() < tags[j].Tag() })
	}
	if len(tags) == 0 {
		return errdefs.NotFound("An image does not exist locally with the tag: %s", reference.FamiliarName(named))
	}
	for _, t := range tags {
		if _, err := s.Get(t.String()); err != nil {
			return errdefs.NotFound("An image does not exist locally with the tag: %s", reference.FamiliarString(t))
		}
	}
	ropts := s.remoteOptions(ctx, opts.Auth)
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return err
	}
	progress.Message(out, "", "The push refers to repository ["+named.Name()+"]")
	for _, t := range tags {
		if err := s.pushTag(ctx, pusher, puller, t, out); err != nil {
			return registryError("push", t, err)
		}
	}
	return nil
}

func (s *Store) pushTag(ctx context.Context, pusher *remote.Pusher, puller *remote.Puller, tag reference.NamedTagged, out progress.Output) error {
	img, err := s.Get(tag.String())
	if err != nil {
		return err
	}
	release := s.lease(img.ID)
	defer release()
	rec, rawManifest, err := s.distributable(img.ID)
	if err != nil {
		return err
	}
	rref, err := s.remoteRef(tag)
	if err != nil {
		return err
	}
	repo := rref.Context()
	for _, l := range rec.Layers {
		progress.Update(out, shortID(l.DiffID), "Preparing")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxConcurrentDownloads)
	for _, l := range rec.Layers {
		g.Go(func() error { return s.pushLayer(gctx, pusher, puller, repo, l, out) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	rawConfig, err := s.content.read(img.ID)
	if err != nil {
		return err
	}
	if err := pusher.Upload(ctx, repo, static.NewLayer(rawConfig, types.DockerConfigJSON)); err != nil {
		return err
	}
	mt := types.DockerManifestSchema2
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(rawManifest, &probe) == nil && probe.MediaType != "" {
		mt = probe.MediaType
	}
	if err := pusher.Put(ctx, rref, rawTaggable{raw: rawManifest, mt: mt}); err != nil {
		return err
	}
	progress.Message(out, "", fmt.Sprintf("%s: digest: %s size: %d", tag.Tag(), rec.Manifest, len(rawManifest)))
	progress.Aux(out, PushResult{Tag: tag.Tag(), Digest: rec.Manifest, Size: len(rawManifest)})
	s.mu.Lock()
	if e := s.images[img.ID]; e != nil {
		err = s.setRefsLocked(e, digestRef(tag, rec.Manifest))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.opts.Events != nil {
		s.opts.Events.Publish(events.ImageEventType, events.ActionPush, reference.FamiliarString(tag),
			map[string]string{"name": reference.FamiliarName(tag)})
	}
	return nil
}

func (s *Store) pushLayer(ctx context.Context, pusher *remote.Pusher, puller *remote.Puller, repo name.Repository, l layerRecord, out progress.Output) error {
	id := shortID(l.DiffID)
	if rl, err := puller.Layer(ctx, repo.Digest(l.Digest)); err == nil {
		if ex, ok := rl.(interface{ Exists() (bool, error) }); ok {
			if found, err := ex.Exists(); err == nil && found {
				progress.Update(out, id, "Layer already exists")
				return nil
			}
		}
	}
	bl := &blobLayer{s: s, rec: l, out: out, id: id}
	if err := pusher.Upload(ctx, repo, bl); err != nil {
		return err
	}
	progress.Update(out, id, "Pushed")
	return nil
}

type rawTaggable struct {
	raw []byte
	mt  types.MediaType
}

func (t rawTaggable) RawManifest() ([]byte, error)        { return t.raw, nil }
func (t rawTaggable) MediaType() (types.MediaType, error) { return t.mt, nil }

// blobLayer is a stored layer blob as go-containerregistry's v1.Layer, with
// a "Pushing" progress bar on its upload.
type blobLayer struct {
	s   *Store
	rec layerRecord
	out progress.Output
	id  string
}

func (b *blobLayer) Digest() (v1.Hash, error) { return v1.NewHash(b.rec.Digest) }
func (b *blobLayer) DiffID() (v1.Hash, error) { return v1.NewHash(b.rec.DiffID) }
func (b *blobLayer) Size() (int64, error)     { return b.rec.Size, nil }
func (b *blobLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(b.rec.MediaType), nil
}

func (b *blobLayer) Compressed() (io.ReadCloser, error) {
	f, err := b.s.content.open(b.rec.Digest)
	if err != nil {
		return nil, err
	}
	return progress.NewProgressReader(f, b.out, b.rec.Size, b.id, "Pushing"), nil
}

func (b *blobLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := b.s.content.open(b.rec.Digest)
	if err != nil {
		return nil, err
	}
	r, closeDec, err := compression.Decompress(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{r, func() error { closeDec(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// distributable returns image id's record with every layer blob compressed
// and a manifest describing them, making both (once) for images that came
// from an archive with plain tar layers.
func (s *Store) distributable(id string) (record, []byte, error) {
	s.mu.RLock()
	e := s.images[id]
	var rec record
	if e != nil {
		rec = e.rec
		rec.Layers = append([]layerRecord(nil), e.rec.Layers...)
	}
	s.mu.RUnlock()
	if e == nil {
		return rec, nil, notFound(id)
	}
	if rec.Manifest != "" && s.content.has(rec.Manifest) {
		raw, err := s.content.read(rec.Manifest)
		return rec, raw, err
	}
	for i, l := range rec.Layers {
		if isCompressedMediaType(l.MediaType) {
			continue
		}
		cl, release, err := s.compressBlob(l)
		if err != nil {
			return rec, nil, err
		}
		defer release()
		rec.Layers[i] = cl
	}
	cfgSize, err := s.content.size(id)
	if err != nil {
		return rec, nil, err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgSize, Digest: mustHash(id)}}
	for _, l := range rec.Layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: mustHash(l.Digest)})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return rec, nil, err
	}
	defer s.lease(digestBytes(raw))()
	if rec.Manifest, err = s.content.put("", raw); err != nil {
		return rec, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.images[id]; e != nil {
		e.rec.Manifest, e.rec.Layers = rec.Manifest, rec.Layers
		if err := s.writeRecordLocked(e.rec); err != nil {
			return rec, nil, err
		}
	}
	return rec, raw, nil
}

func isCompressedMediaType(mt string) bool {
	return strings.HasSuffix(mt, "gzip") || strings.HasSuffix(mt, "zstd")
}

func mustHash(d string) v1.Hash {
	h, _ := v1.NewHash(d)
	return h
}

// compressBlob stores a gzip-compressed copy of a plain tar layer blob,
// leased until the caller has recorded it.
func (s *Store) compressBlob(l layerRecord) (layerRecord, func(), error) {
	f, err := s.content.open(l.Digest)
	if err != nil {
		return l, nil, err
	}
	defer f.Close()
	ing, err := s.content.newIngest()
	if err != nil {
		return l, nil, err
	}
	defer ing.discard()
	zw, err := gzip.NewWriterLevel(ing, gzip.DefaultCompression)
	if err != nil {
		return l, nil, err
	}
	if _, err := io.Copy(zw, f); err != nil {
		return l, nil, fmt.Errorf("compress layer %s: %w", shortID(l.DiffID), err)
	}
	if err := zw.Close(); err != nil {
		return l, nil, err
	}
	release := s.lease(ing.digest())
	d, err := ing.commit("")
	if err != nil {
		release()
		return l, nil, err
	}
	return layerRecord{Digest: d, MediaType: string(types.DockerLayer), Size: ing.n, DiffID: l.DiffID}, release, nil
}
