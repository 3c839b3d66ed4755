//go:build linux

package image

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/progress"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// PullOptions configure Pull.
type PullOptions struct {
	Platform string               // "os/arch[/variant]"; "" is linux on this machine's architecture
	Auth     *registry.AuthConfig // credentials (from X-Registry-Auth); nil for anonymous
}

// maxConcurrentDownloads bounds the layers fetched at once, per pull.
const maxConcurrentDownloads = 3

// Pull fetches ref from its registry and writes dockerd's progress stream
// ("Pulling from …", per-layer "Downloading" bars, "Digest: …", "Status: …")
// to out. Each layer is streamed once: the bytes go to the blob store and,
// decompressed, straight into the snapshot store, so download, checksum and
// unpacking overlap; a layer is only kept when both its blob digest and its
// diff ID verify.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions, out progress.Output) (*Image, error) {
	if out == nil {
		out = progress.DiscardOutput()
	}
	named, err := parseNamed(ref)
	if err != nil {
		return nil, err
	}
	named = reference.TagNameOnly(named)
	plat, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	id := ""
	if t, ok := named.(reference.Tagged); ok {
		id = t.Tag()
	} else if d, ok := named.(reference.Digested); ok {
		id = d.Digest().String()
	}
	eps, err := s.pullEndpoints(named)
	if err != nil {
		return nil, err
	}
	// Each mirror in turn, then the registry itself: a mirror that fails
	// in any way (down, or without the image) is passed over, as dockerd
	// does. Credentials go to the image's own registry only.
	var (
		desc        *remote.Descriptor
		img         v1.Image
		rec         record
		rawManifest []byte
		rawConfig   []byte
		announced   bool
	)
	for _, ep := range eps {
		auth := opts.Auth
		if ep.mirror != "" {
			auth = nil
		}
		var puller *remote.Puller
		puller, err = remote.NewPuller(s.remoteOptions(ctx, auth)...)
		if err != nil {
			return nil, err
		}
		desc, err = puller.Get(ctx, ep.ref)
		if err == nil {
			if !announced {
				progress.Message(out, id, "Pulling from "+reference.Path(named))
				announced = true
			}
			img, err = selectImage(ctx, puller, ep.ref, desc, plat, opts.Platform != "")
		}
		if err == nil {
			rec, rawManifest, rawConfig, err = describe(img)
		}
		if err == nil {
			break
		}
		if ep.mirror != "" {
			s.log.Info("registry mirror passed over", "mirror", ep.mirror, "ref", named.String(), "err", err)
			continue
		}
		return nil, registryError("pull", named, err)
	}
	chains := chainIDs(rec.Layers)
	leased := append([]string{rec.ID, rec.Manifest}, chains...)
	for _, l := range rec.Layers {
		leased = append(leased, l.Digest)
	}
	release := s.lease(leased...)
	defer release()

	existed := s.complete(rec.ID)
	if !existed {
		if _, err := s.content.put(rec.ID, rawConfig); err != nil {
			return nil, err
		}
		if _, err := s.content.put(rec.Manifest, rawManifest); err != nil {
			return nil, err
		}
		rlayers, err := img.Layers()
		if err != nil {
			return nil, registryError("pull", named, err)
		}
		if err := s.fetchLayers(ctx, out, rlayers, rec.Layers, chains); err != nil {
			return nil, err
		}
	}
	refs := []string{digestRef(named, desc.Digest.String())}
	if _, ok := named.(reference.Tagged); ok {
		refs = append(refs, named.String())
	}
	image, tagMoved, err := s.commit(rec, refs...)
	if err != nil {
		return nil, err
	}
	progress.Message(out, "", "Digest: "+desc.Digest.String())
	fam := reference.FamiliarString(named)
	if tagMoved || !existed {
		progress.Message(out, "", "Status: Downloaded newer image for "+fam)
	} else {
		progress.Message(out, "", "Status: Image is up to date for "+fam)
	}
	if s.opts.Events != nil {
		s.opts.Events.Publish(events.ImageEventType, events.ActionPull, fam, map[string]string{"name": reference.FamiliarName(named)})
	}
	return image, nil
}

// complete reports whether image id is stored with every layer unpacked.
func (s *Store) complete(id string) bool {
	s.mu.RLock()
	e := s.images[id]
	s.mu.RUnlock()
	return e != nil && (e.chainID == "" || s.snaps.Has(e.chainID))
}

func parsePlatform(p string) (v1.Platform, error) {
	if p == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	pl, err := v1.ParsePlatform(strings.ToLower(p))
	if err != nil || pl.OS == "" || pl.Architecture == "" {
		return v1.Platform{}, errdefs.InvalidArgument("invalid platform %q: want os/arch[/variant]", p)
	}
	return *pl, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// variantMatches treats arm64's "" and "v8" as the same, as Docker does.
func variantMatches(want, got v1.Platform) bool {
	norm := func(p v1.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "" {
			return "v8"
		}
		return p.Variant
	}
	return want.Variant == "" || norm(want) == norm(got)
}

// selectImage resolves a manifest list to the manifest for plat; a plain
// manifest is taken as it is unless a platform was asked for explicitly and
// the image is for another.
func selectImage(ctx context.Context, puller *remote.Puller, rref name.Reference, desc *remote.Descriptor, plat v1.Platform, explicit bool) (v1.Image, error) {
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		var pick *v1.Descriptor
		for i, m := range im.Manifests {
			p := m.Platform
			if p != nil && p.OS == plat.OS && p.Architecture == plat.Architecture && m.MediaType.IsImage() && variantMatches(plat, *p) {
				pick = &im.Manifests[i]
				break
			}
		}
		if pick == nil {
			return nil, errdefs.NotFound("no matching manifest for %s in the manifest list entries", platformString(plat))
		}
		child, err := puller.Get(ctx, rref.Context().Digest(pick.Digest.String()))
		if err != nil {
			return nil, err
		}
		return child.Image()
	case desc.MediaType.IsSchema1():
		return nil, errdefs.InvalidArgument("image manifest schema 1 (%s) is not supported: push the image again with a current tool", desc.MediaType)
	case !desc.MediaType.IsImage():
		return nil, errdefs.InvalidArgument("%s is not an image manifest", desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	if explicit {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if got.OS != plat.OS || got.Architecture != plat.Architecture || !variantMatches(plat, got) {
			return nil, errdefs.NotFound("image was found but does not match the specified platform: wanted %s, actual: %s",
				platformString(plat), platformString(got))
		}
	}
	return img, nil
}

// describe reads an image's manifest and config and turns them into a
// record, checking that they agree.
func describe(img v1.Image) (rec record, rawManifest, rawConfig []byte, err error) {
	rawManifest, err = img.RawManifest()
	if err != nil {
		return rec, nil, nil, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(rawManifest)))
	if err != nil {
		return rec, nil, nil, errdefs.InvalidArgument("invalid manifest: %v", err)
	}
	rawConfig, err = img.RawConfigFile()
	if err != nil {
		return rec, nil, nil, err
	}
	if got := digestBytes(rawConfig); got != m.Config.Digest.String() {
		return rec, nil, nil, errdefs.InvalidArgument("config digest %s does not match the manifest's %s", got, m.Config.Digest)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawConfig)))
	if err != nil {
		return rec, nil, nil, errdefs.InvalidArgument("invalid image config: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return rec, nil, nil, errdefs.InvalidArgument("image has %d layers but its config lists %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	rec = record{ID: m.Config.Digest.String(), Manifest: digestBytes(rawManifest)}
	for i, l := range m.Layers {
		if !snapshot.ValidDigest(l.Digest.String()) || !snapshot.ValidDigest(cfg.RootFS.DiffIDs[i].String()) {
			return rec, nil, nil, errdefs.InvalidArgument("layer %d: unsupported digest %s", i, l.Digest)
		}
		rec.Layers = append(rec.Layers, layerRecord{Digest: l.Digest.String(), MediaType: string(l.MediaType),
			Size: l.Size, DiffID: cfg.RootFS.DiffIDs[i].String()})
	}
	return rec, rawManifest, rawConfig, nil
}

func chainIDs(layers []layerRecord) []string {
	out := make([]string, len(layers))
	chain := ""
	for i, l := range layers {
		chain = snapshot.ChainID(chain, l.DiffID)
		out[i] = chain
	}
	return out
}

// shortID is the 12-hex-digit form progress lines use.
func shortID(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

func (s *Store) fetchLayers(ctx context.Context, out progress.Output, rlayers []v1.Layer, layers []layerRecord, chains []string) error {
	if len(rlayers) != len(layers) {
		return fmt.Errorf("manifest lists %d layers, image has %d", len(rlayers), len(layers))
	}
	queued := 0
	for i, l := range layers {
		if s.snaps.Has(chains[i]) && s.content.has(l.Digest) {
			progress.Update(out, shortID(l.Digest), "Already exists")
			continue
		}
		progress.Update(out, shortID(l.Digest), "Pulling fs layer")
		if queued++; queued > maxConcurrentDownloads {
			progress.Update(out, shortID(l.Digest), "Waiting")
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	sem := make(chan struct{}, maxConcurrentDownloads)
	for i := range layers {
		parent := ""
		if i > 0 {
			parent = chains[i-1]
		}
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-sem }()
			return s.fetchLayer(gctx, out, rlayers[i], layers[i], parent, chains[i])
		})
	}
	return g.Wait()
}

// fetchLayer makes sure one layer's blob is stored and its chain unpacked.
func (s *Store) fetchLayer(ctx context.Context, out progress.Output, rl v1.Layer, l layerRecord, parent, chain string) error {
	unlock := s.fetches.Lock(l.Digest)
	defer unlock()
	id := shortID(l.Digest)
	haveBlob, haveChain := s.content.has(l.Digest), s.snaps.Has(chain)
	if haveBlob && haveChain {
		return nil // reported as "Already exists", or done by a concurrent pull
	}
	if haveBlob {
		if err := s.applyBlob(ctx, out, l, parent); err != nil {
			return err
		}
		progress.Update(out, id, "Pull complete")
		return nil
	}
	rc, err := rl.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", id, err)
	}
	defer rc.Close()
	// rc checks the blob's size and digest at EOF, so the ingest need not.
	ing, err := s.content.newVerifiedIngest()
	if err != nil {
		return err
	}
	defer ing.discard()
	src := io.TeeReader(progress.NewProgressReader(rc, out, l.Size, id, "Downloading"), ing)
	if !haveChain {
		tarStream, closeDec, err := compression.Decompress(src)
		if err != nil {
			return fmt.Errorf("layer %s: %w", id, err)
		}
		_, err = s.snaps.Apply(ctx, parent, l.DiffID, tarStream)
		closeDec()
		if err != nil {
			return fmt.Errorf("failed to register layer %s: %w", id, err)
		}
	}
	// The rest of the blob (compression trailer), so it is verified whole.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return fmt.Errorf("layer %s: %w", id, err)
	}
	progress.Update(out, id, "Verifying Checksum")
	if _, err := ing.commit(l.Digest); err != nil {
		return fmt.Errorf("layer %s: %w", id, err)
	}
	progress.Update(out, id, "Download complete")
	out.WriteProgress(progress.Progress{ID: id, Action: "Extracting", Current: l.Size, Total: l.Size})
	progress.Update(out, id, "Pull complete")
	return nil
}

// applyBlob unpacks a stored layer blob onto parent.
func (s *Store) applyBlob(ctx context.Context, out progress.Output, l layerRecord, parent string) error {
	f, err := s.content.open(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	pr := progress.NewProgressReader(f, out, st.Size(), shortID(l.Digest), "Extracting")
	tarStream, closeDec, err := compression.Decompress(pr)
	if err != nil {
		return fmt.Errorf("layer %s: %w", shortID(l.Digest), err)
	}
	defer closeDec()
	if _, err := s.snaps.Apply(ctx, parent, l.DiffID, tarStream); err != nil {
		return fmt.Errorf("failed to register layer %s: %w", shortID(l.Digest), err)
	}
	return nil
}
