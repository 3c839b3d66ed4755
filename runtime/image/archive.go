//go:build linux

package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client/pkg/progress"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// Archives are what `docker save` writes since Docker 25: an OCI image
// layout (oci-layout, index.json, blobs/sha256/…) that also carries the
// classic docker-archive manifest.json, whose Config and Layers entries
// point at the same blobs. Save writes both; Load reads either.

type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// Save writes the images refs name as one archive to w. A repository name
// without a tag saves every tag of it; an ID saves the image untagged.
func (s *Store) Save(ctx context.Context, refs []string, w io.Writer) error {
	type saved struct {
		img  *Image
		tags []string
	}
	var order []*saved
	byID := map[string]*saved{}
	add := func(img *Image, tag string) {
		sv := byID[img.ID]
		if sv == nil {
			sv = &saved{img: img}
			byID[img.ID] = sv
			order = append(order, sv)
		}
		if tag != "" {
			for _, t := range sv.tags {
				if t == tag {
					return
				}
			}
			sv.tags = append(sv.tags, tag)
		}
	}
	if len(refs) == 0 {
		return errdefs.InvalidArgument("no images given to save")
	}
	for _, ref := range refs {
		if named, err := reference.ParseNormalizedNamed(ref); err == nil && reference.IsNameOnly(named) && !shortIDRE().MatchString(ref) {
			found := false
			for _, img := range s.List() {
				for _, t := range img.RepoTags {
					if repoName(t) == named.Name() {
						add(img, t)
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		img, err := s.Get(ref)
		if err != nil {
			return err
		}
		tag := ""
		if named, err := reference.ParseNormalizedNamed(ref); err == nil && !fullIDRE().MatchString(ref) {
			if t, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
				for _, rt := range img.RepoTags {
					if rt == t.String() {
						tag = rt
					}
				}
			}
		}
		add(img, tag)
	}

	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	written := map[string]bool{}
	blob := func(d string, data []byte) error {
		if written[d] {
			return nil
		}
		written[d] = true
		name := "blobs/sha256/" + strings.TrimPrefix(d, "sha256:")
		if data != nil {
			return file(name, data)
		}
		f, err := s.content.open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err = io.Copy(tw, ctxReader{ctx, f})
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	var manifests []archiveManifest
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, sv := range order {
		rec, raw, mt, err := s.archiveManifest(sv.img.ID)
		if err != nil {
			return err
		}
		am := archiveManifest{Config: "blobs/sha256/" + strings.TrimPrefix(rec.ID, "sha256:"), RepoTags: familiarAll(sv.tags), Layers: []string{}}
		if err := blob(rec.ID, nil); err != nil {
			return err
		}
		for _, l := range rec.Layers {
			if err := blob(l.Digest, nil); err != nil {
				return err
			}
			am.Layers = append(am.Layers, "blobs/sha256/"+strings.TrimPrefix(l.Digest, "sha256:"))
		}
		md := digestBytes(raw)
		if err := blob(md, raw); err != nil {
			return err
		}
		manifests = append(manifests, am)
		desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: mustHash(md)}
		if len(sv.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range sv.tags {
			d := desc
			named, _ := reference.ParseNormalizedNamed(t)
			d.Annotations = map[string]string{annotationImageName: t}
			if tagged, ok := named.(reference.Tagged); ok {
				d.Annotations[annotationRefName] = tagged.Tag()
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	ib, _ := json.Marshal(index)
	mb, _ := json.Marshal(manifests)
	if err := file("index.json", ib); err != nil {
		return err
	}
	if err := file("manifest.json", mb); err != nil {
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, sv := range order {
		s.event(events.ActionSave, sv.img.ID, "")
	}
	return nil
}

// archiveManifest returns image id's record and a manifest for its blobs as
// stored: the pulled manifest when there is one, else an OCI manifest made
// here (layers keep their compression, so nothing is re-encoded).
func (s *Store) archiveManifest(id string) (record, []byte, types.MediaType, error) {
	s.mu.RLock()
	e := s.images[id]
	var rec record
	if e != nil {
		rec = e.rec
	}
	s.mu.RUnlock()
	if e == nil {
		return rec, nil, "", notFound(id)
	}
	if rec.Manifest != "" && s.content.has(rec.Manifest) {
		raw, err := s.content.read(rec.Manifest)
		if err != nil {
			return rec, nil, "", err
		}
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		json.Unmarshal(raw, &probe)
		if probe.MediaType == "" {
			probe.MediaType = types.OCIManifestSchema1
		}
		return rec, raw, probe.MediaType, nil
	}
	cfgSize, err := s.content.size(id)
	if err != nil {
		return rec, nil, "", err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: cfgSize, Digest: mustHash(id)}}
	for _, l := range rec.Layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: mustHash(l.Digest)})
	}
	raw, err := json.Marshal(m)
	return rec, raw, types.OCIManifestSchema1, err
}

// spooled is one regular file of an archive being loaded, kept in the blob
// store's temp directory with its digest.
type spooled struct {
	path   string
	digest string
	size   int64
	stored bool // moved into the blob store
}

type archive struct {
	files map[string]*spooled
	links map[string]string // link name → target name (both cleaned)
}

func (a *archive) lookup(name string) (*spooled, error) {
	name = path.Clean(name)
	for range 16 {
		if f := a.files[name]; f != nil {
			return f, nil
		}
		t, ok := a.links[name]
		if !ok {
			return nil, errdefs.InvalidArgument("invalid archive: %s is missing", name)
		}
		name = t
	}
	return nil, errdefs.InvalidArgument("invalid archive: too many links to %s", name)
}

func (a *archive) read(name string) ([]byte, error) {
	f, err := a.lookup(name)
	if err != nil {
		return nil, err
	}
	if f.size > 64<<20 {
		return nil, errdefs.InvalidArgument("invalid archive: %s is too large for a manifest or config", name)
	}
	return os.ReadFile(f.path)
}

// archiveName cleans an archive entry name, refusing absolute paths and
// "..": an archive is as untrusted as a layer.
func archiveName(name string) (string, error) {
	if strings.HasPrefix(name, "/") || strings.IndexByte(name, 0) >= 0 {
		return "", errdefs.InvalidArgument("invalid archive entry %q: absolute path", name)
	}
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return "", errdefs.InvalidArgument("invalid archive entry %q: path contains \"..\"", name)
		}
	}
	return path.Clean(name), nil
}

// spool reads an archive into the blob store's temp directory, hashing each
// file as it goes. Nothing from the archive is ever written under its own
// name: files become numbered temp files, links entries in a map.
func (s *Store) spool(ctx context.Context, r io.Reader, dir string) (*archive, error) {
	a := &archive{files: map[string]*spooled{}, links: map[string]string{}}
	tr := tar.NewReader(ctxReader{ctx, r})
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid archive: %v", err)
		}
		name, err := archiveName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeReg, tar.TypeRegA:
			ing, err := s.content.newIngest()
			if err != nil {
				return nil, err
			}
			if _, err := io.Copy(ing, tr); err != nil {
				ing.discard()
				return nil, errdefs.InvalidArgument("invalid archive: reading %s: %v", name, err)
			}
			if err := ing.close(); err != nil {
				ing.discard()
				return nil, err
			}
			n++
			p := filepath.Join(dir, fmt.Sprintf("%06d", n))
			if err := os.Rename(ing.f.Name(), p); err != nil {
				return nil, err
			}
			a.files[name] = &spooled{path: p, digest: ing.digest(), size: ing.n}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink {
				if strings.HasPrefix(target, "/") {
					return nil, errdefs.InvalidArgument("invalid archive entry %q: symlink to absolute path %q", hdr.Name, target)
				}
				target = path.Join(path.Dir(name), target)
			}
			target = path.Clean(target)
			if strings.HasPrefix(target, "/") || target == ".." || strings.HasPrefix(target, "../") {
				return nil, errdefs.InvalidArgument("invalid archive entry %q: link to %q leads out of the archive", hdr.Name, hdr.Linkname)
			}
			a.links[name] = target
		default:
			return nil, errdefs.InvalidArgument("invalid archive entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
	return a, nil
}

// loadImage is one image found in an archive.
type loadImage struct {
	config   string   // archive path of the config
	layers   []string // archive paths of the layer blobs
	tags     []string // normalized
	manifest []byte   // the OCI manifest, when the archive has one for it
}

// Load reads a `docker save` archive (docker-archive or OCI layout) from r,
// adds its images and tags, and reports "Loaded image: …" lines to out and
// per-layer progress to prog.
func (s *Store) Load(ctx context.Context, r io.Reader, out io.Writer, prog progress.Output) error {
	if prog == nil {
		prog = progress.DiscardOutput()
	}
	dir, err := os.MkdirTemp(filepath.Join(s.content.root, "tmp"), "load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// docker load takes the archive compressed too (docker save | gzip).
	plain, closeDec, err := compression.Decompress(r)
	if err != nil {
		return errdefs.InvalidArgument("invalid archive: %v", err)
	}
	defer closeDec()
	a, err := s.spool(ctx, plain, dir)
	if err != nil {
		return err
	}
	imgs, err := a.images()
	if err != nil {
		return err
	}
	for _, li := range imgs {
		if err := s.loadOne(ctx, a, li, out, prog); err != nil {
			return err
		}
	}
	return nil
}

// images lists the archive's images from manifest.json or, failing that,
// index.json.
func (a *archive) images() ([]loadImage, error) {
	if _, err := a.lookup("manifest.json"); err == nil {
		raw, err := a.read("manifest.json")
		if err != nil {
			return nil, err
		}
		var ms []archiveManifest
		if err := json.Unmarshal(raw, &ms); err != nil {
			return nil, errdefs.InvalidArgument("invalid archive: manifest.json: %v", err)
		}
		var out []loadImage
		for _, m := range ms {
			li := loadImage{config: m.Config, layers: m.Layers}
			for _, t := range m.RepoTags {
				named, err := reference.ParseNormalizedNamed(t)
				if err != nil {
					return nil, errdefs.InvalidArgument("invalid archive: tag %q: %v", t, err)
				}
				li.tags = append(li.tags, reference.TagNameOnly(named).String())
			}
			out = append(out, li)
		}
		return out, nil
	}
	if _, err := a.lookup("index.json"); err != nil {
		return nil, errdefs.InvalidArgument("invalid archive: no manifest.json or index.json (not made by docker save?)")
	}
	raw, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid archive: index.json: %v", err)
	}
	plat, _ := parsePlatform("")
	byManifest := map[string]int{}
	var out []loadImage
	for _, d := range idx.Manifests {
		desc := d
		if desc.MediaType.IsIndex() {
			raw, err := a.read(blobPath(desc.Digest.String()))
			if err != nil {
				return nil, err
			}
			inner, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
			if err != nil {
				return nil, errdefs.InvalidArgument("invalid archive: %s: %v", desc.Digest, err)
			}
			found := false
			for _, m := range inner.Manifests {
				if m.Platform != nil && m.Platform.OS == plat.OS && m.Platform.Architecture == plat.Architecture {
					desc.Digest, desc.MediaType, found = m.Digest, m.MediaType, true
					break
				}
			}
			if !found {
				continue
			}
		}
		if !desc.MediaType.IsImage() {
			continue
		}
		i, ok := byManifest[desc.Digest.String()]
		if !ok {
			raw, err := a.read(blobPath(desc.Digest.String()))
			if err != nil {
				return nil, err
			}
			m, err := v1.ParseManifest(strings.NewReader(string(raw)))
			if err != nil {
				return nil, errdefs.InvalidArgument("invalid archive: manifest %s: %v", desc.Digest, err)
			}
			li := loadImage{config: blobPath(m.Config.Digest.String()), manifest: raw}
			for _, l := range m.Layers {
				li.layers = append(li.layers, blobPath(l.Digest.String()))
			}
			out = append(out, li)
			i = len(out) - 1
			byManifest[desc.Digest.String()] = i
		}
		if n := d.Annotations[annotationImageName]; n != "" {
			if named, err := reference.ParseNormalizedNamed(n); err == nil {
				out[i].tags = append(out[i].tags, reference.TagNameOnly(named).String())
			}
		}
	}
	if len(out) == 0 {
		return nil, errdefs.InvalidArgument("invalid archive: index.json lists no image for %s", platformString(plat))
	}
	return out, nil
}

func blobPath(d string) string { return "blobs/" + strings.Replace(d, ":", "/", 1) }

func (s *Store) loadOne(ctx context.Context, a *archive, li loadImage, out io.Writer, prog progress.Output) error {
	cf, err := a.lookup(li.config)
	if err != nil {
		return err
	}
	rawConfig, err := a.read(li.config)
	if err != nil {
		return err
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(rawConfig)))
	if err != nil {
		return errdefs.InvalidArgument("invalid archive: config %s: %v", li.config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(li.layers) {
		return errdefs.InvalidArgument("invalid archive: image has %d layers but its config lists %d diff IDs", len(li.layers), len(cfg.RootFS.DiffIDs))
	}
	rec := record{ID: cf.digest}
	var files []*spooled
	for i, lp := range li.layers {
		f, err := a.lookup(lp)
		if err != nil {
			return err
		}
		diffID := cfg.RootFS.DiffIDs[i].String()
		if !snapshot.ValidDigest(diffID) {
			return errdefs.InvalidArgument("invalid archive: unsupported diff ID %s", diffID)
		}
		mt, err := blobMediaType(f.path)
		if err != nil {
			return err
		}
		rec.Layers = append(rec.Layers, layerRecord{Digest: f.digest, MediaType: string(mt), Size: f.size, DiffID: diffID})
		files = append(files, f)
	}
	if li.manifest != nil {
		if m, err := v1.ParseManifest(strings.NewReader(string(li.manifest))); err == nil && m.Config.Digest.String() == rec.ID {
			rec.Manifest = digestBytes(li.manifest)
			for i := range rec.Layers {
				if i < len(m.Layers) && m.Layers[i].Digest.String() == rec.Layers[i].Digest {
					rec.Layers[i].MediaType = string(m.Layers[i].MediaType)
				}
			}
		}
	}
	chains := chainIDs(rec.Layers)
	leased := append([]string{rec.ID, rec.Manifest}, chains...)
	for _, l := range rec.Layers {
		leased = append(leased, l.Digest)
	}
	defer s.lease(leased...)()

	if _, err := s.content.put(rec.ID, rawConfig); err != nil {
		return err
	}
	if rec.Manifest != "" {
		if _, err := s.content.put(rec.Manifest, li.manifest); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxConcurrentDownloads)
	for i, l := range rec.Layers {
		parent := ""
		if i > 0 {
			parent = chains[i-1]
		}
		f := files[i]
		g.Go(func() error { return s.loadLayer(gctx, f, l, parent, chains[i], prog) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, t := range li.tags {
		if old, err := s.Get(t); err == nil && old.ID != rec.ID {
			fmt.Fprintf(out, "The image %s already exists, renaming the old one with ID %s to empty string\n", Familiar(t), old.ID)
		}
	}
	if _, _, err := s.commit(rec, li.tags...); err != nil {
		return err
	}
	s.event(events.ActionLoad, rec.ID, "")
	for _, t := range li.tags {
		s.event(events.ActionTag, rec.ID, t)
		fmt.Fprintf(out, "Loaded image: %s\n", Familiar(t))
	}
	if len(li.tags) == 0 {
		fmt.Fprintf(out, "Loaded image ID: %s\n", rec.ID)
	}
	return nil
}

// loadLayer stores one spooled layer blob and unpacks it.
func (s *Store) loadLayer(ctx context.Context, f *spooled, l layerRecord, parent, chain string, prog progress.Output) error {
	unlock := s.fetches.Lock(l.Digest)
	defer unlock()
	if !f.stored {
		if err := s.content.adopt(f.path, f.digest); err != nil {
			return err
		}
		f.stored = true
	}
	if s.snaps.Has(chain) {
		return nil
	}
	bf, err := s.content.open(l.Digest)
	if err != nil {
		return err
	}
	defer bf.Close()
	pr := progress.NewProgressReader(bf, prog, l.Size, shortID(l.DiffID), "Loading layer")
	tarStream, closeDec, err := compression.Decompress(pr)
	if err != nil {
		return fmt.Errorf("layer %s: %w", shortID(l.DiffID), err)
	}
	defer closeDec()
	if _, err := s.snaps.Apply(ctx, parent, l.DiffID, tarStream); err != nil {
		return errdefs.As(errdefs.KindInvalidArgument, fmt.Errorf("failed to register layer %s: %w", shortID(l.DiffID), err))
	}
	return nil
}

// blobMediaType names a layer blob's media type from its first bytes. A
// layer is stored as it came, so only the compressions a registry takes
// (gzip, zstd) are kept; bzip2 and xz layers are refused by name.
func blobMediaType(p string) (types.MediaType, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	switch k := compression.Detect(magic[:n]); k {
	case compression.Gzip:
		return types.DockerLayer, nil
	case compression.Zstd:
		return types.OCILayerZStd, nil
	case compression.None:
		return types.OCIUncompressedLayer, nil
	default:
		return "", errdefs.InvalidArgument("invalid archive: a layer compressed with %s (layers may be plain, gzip or zstd)", k)
	}
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
