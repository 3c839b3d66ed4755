//go:build linux

package buildkit

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/cache"
	cacheconfig "github.com/moby/buildkit/cache/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/compression"
	"github.com/moby/buildkit/util/progress"
	"github.com/moby/buildkit/worker/base"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// exporterMoby is the exporter buildx's docker driver asks for by default
// (`docker build -t x .`, i.e. --load): the image lands in the engine.
const exporterMoby = "moby"

// mobyWorker is BuildKit's base worker with the moby exporter added.
type mobyWorker struct {
	*base.Worker
	eng           Engine
	blobDir       string
	platformsOnce sync.Once
}

// Platforms looks for emulators of other architectures once. BuildKit's
// ListWorkers asks anew on every call (buildx makes two per build), and
// each look runs a test binary per architecture: 50 ms of every build.
func (w *mobyWorker) Platforms(noCache bool) []ocispecs.Platform {
	w.platformsOnce.Do(func() { w.Worker.Platforms(true) })
	return w.Worker.Platforms(false)
}

// Exporter serves "moby" and "image" with the engine's store as the
// destination; the other outputs (local, tar, oci, docker) are BuildKit's.
func (w *mobyWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name != exporterMoby && name != client.ExporterImage {
		return w.Worker.Exporter(name, sm)
	}
	inner, err := w.Worker.Exporter(client.ExporterImage, sm)
	if err != nil {
		return nil, err
	}
	return &mobyExporter{inner: inner, eng: w.eng, blobDir: w.blobDir, typ: name}, nil
}

// mobyExporter wraps BuildKit's image exporter (which writes the image's
// manifest, config and layer blobs to the content store, and pushes when
// asked) and then has the engine import the image and tag it.
type mobyExporter struct {
	inner   exporter.Exporter
	eng     Engine
	blobDir string
	typ     string
}

func (e *mobyExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	inst := &mobyInstance{eng: e.eng, blobDir: e.blobDir, typ: e.typ, attrs: attrs, store: true,
		name: attrs[string(exptypes.OptKeyName)]}
	if v, ok := attrs[string(exptypes.OptKeyStore)]; ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("non-bool value specified for %s", exptypes.OptKeyStore)
		}
		inst.store = b
	}
	innerAttrs := maps.Clone(attrs)
	if innerAttrs == nil {
		innerAttrs = map[string]string{}
	}
	// The inner exporter must not tag into its own image store: the engine
	// is the store.
	innerAttrs[string(exptypes.OptKeyStore)] = "false"
	if _, ok := innerAttrs[string(exptypes.OptKeyLayerCompression)]; !ok && e.typ == exporterMoby {
		// The engine unpacks what it imports and keeps the blobs it was
		// given: compressing new layers here would only cost a build time
		// (a push compresses them then, as dockerd's does).
		innerAttrs[string(exptypes.OptKeyLayerCompression)] = "uncompressed"
	}
	var err error
	if inst.ExporterInstance, err = e.inner.Resolve(ctx, id, innerAttrs); err != nil {
		return nil, err
	}
	return inst, nil
}

type mobyInstance struct {
	exporter.ExporterInstance
	eng     Engine
	blobDir string
	typ     string
	attrs   map[string]string
	name    string
	store   bool
}

func (e *mobyInstance) Type() string             { return e.typ }
func (e *mobyInstance) Attrs() map[string]string { return e.attrs }

func (e *mobyInstance) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	resp, finalize, ref, err := e.ExporterInstance.Export(ctx, src, info)
	if err != nil || !e.store {
		return resp, finalize, ref, err
	}
	fail := func(err error) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
		if ref != nil {
			ref.Release()
		}
		return nil, nil, nil, err
	}
	// The engine needs every blob: layers of a base image pulled by
	// BuildKit may still be lazy (never fetched, as no step read them).
	if err := unlazy(ctx, src, info.SessionID); err != nil {
		return fail(err)
	}
	names := e.name
	if n, ok := src.Metadata[exptypes.ExporterImageNameKey]; names == "*" && ok {
		names = string(n)
	}
	req := link.ImportRequest{Manifest: resp[exptypes.ExporterImageDigestKey], BlobDir: e.blobDir}
	for n := range strings.SplitSeq(names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return fail(fmt.Errorf("invalid reference format: %s: %w", n, err))
		}
		if _, ok := named.(reference.Digested); !ok {
			named = reference.TagNameOnly(named)
		}
		req.Names = append(req.Names, named.String())
	}
	done := progress.OneOff(ctx, "importing to the engine's image store")
	imported, err := e.eng.Import(ctx, req)
	if err = done(err); err != nil {
		return fail(err)
	}
	progress.OneOff(ctx, "writing image "+imported.ID)(nil)
	for _, n := range req.Names {
		progress.OneOff(ctx, "naming to "+n)(nil)
	}
	// As dockerd's moby exporter: the image is known by its config digest.
	resp[exptypes.ExporterImageDigestKey] = imported.ID
	resp[exptypes.ExporterImageConfigDigestKey] = imported.ID
	return resp, finalize, ref, nil
}

// unlazy fetches the content of every layer of the result, as BuildKit's
// image exporter does before it stores an image.
func unlazy(ctx context.Context, src *exporter.Source, sessionID string) error {
	var refs []cache.ImmutableRef
	if src.Ref != nil {
		refs = append(refs, src.Ref)
	}
	for _, r := range src.Refs {
		if r != nil {
			refs = append(refs, r)
		}
	}
	eg, ctx := errgroup.WithContext(ctx)
	for _, r := range refs {
		eg.Go(func() error {
			remotes, err := r.GetRemotes(ctx, false, cacheconfig.RefConfig{Compression: compression.New(compression.Default)}, false, session.NewGroup(sessionID))
			if err != nil {
				return err
			}
			if u, ok := remotes[0].Provider.(cache.Unlazier); ok {
				return u.Unlazy(ctx)
			}
			return nil
		})
	}
	return eg.Wait()
}
