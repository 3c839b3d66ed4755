//go:build linux

package buildkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/util/leaseutil"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// engineImages is the worker's image store: the engine's images, read
// only. BuildKit consults it for `FROM` (buildx asks for local images
// first, as with dockerd); Get brings the image's blobs into the builder's
// content store as hard links, so nothing is copied or pulled. Exported
// images go to the engine through the moby exporter, not through Create.
type engineImages struct {
	eng     Engine
	cs      content.Store
	lm      leases.Manager
	blobDir string // the content store's own blobs/ directory (ALGO/HEX files)
}

func (s *engineImages) Get(ctx context.Context, name string) (images.Image, error) {
	si, err := s.eng.Image(ctx, name)
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return images.Image{}, fmt.Errorf("image %s: %w", name, cerrdefs.ErrNotFound)
		}
		return images.Image{}, err
	}
	target := ocispecs.Descriptor{MediaType: si.MediaType, Digest: digest.FromBytes(si.Manifest), Size: int64(len(si.Manifest))}
	var m ocispecs.Manifest
	if err := json.Unmarshal(si.Manifest, &m); err != nil {
		return images.Image{}, fmt.Errorf("image %s: manifest: %w", name, err)
	}
	// The blobs must outlive this call: a temporary lease (as BuildKit's own
	// metadata resolution takes) keeps them until the build has used them.
	if _, ok := leases.FromContext(ctx); !ok {
		ctx, _, err = leaseutil.WithLease(ctx, s.lm, leases.WithExpiration(10*time.Minute), leaseutil.MakeTemporary)
		if err != nil {
			return images.Image{}, err
		}
	}
	if _, err := s.cs.Info(ctx, target.Digest); err != nil {
		if err := content.WriteBlob(ctx, s.cs, "berth-manifest-"+target.Digest.String(), bytes.NewReader(si.Manifest), target); err != nil {
			return images.Image{}, fmt.Errorf("image %s: %w", name, err)
		}
	}
	for _, d := range append([]ocispecs.Descriptor{m.Config}, m.Layers...) {
		if err := s.adopt(ctx, si.BlobDir, d); err != nil {
			return images.Image{}, fmt.Errorf("image %s: blob %s: %w", name, d.Digest, err)
		}
	}
	return images.Image{Name: name, Target: target}, nil
}

// adopt makes blob d, a file under dir, part of the content store: a hard
// link into the store's backend, then a record in its metadata (which
// finds the content already there and copies nothing). Across file
// systems the bytes are copied, and verified, instead.
func (s *engineImages) adopt(ctx context.Context, dir string, d ocispecs.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return err
	}
	if _, err := s.cs.Info(ctx, d.Digest); err == nil {
		return nil
	}
	src := filepath.Join(dir, d.Digest.Algorithm().String(), d.Digest.Encoded())
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	dst := filepath.Join(s.blobDir, d.Digest.Algorithm().String(), d.Digest.Encoded())
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// Across file systems there is no link: WriteBlob copies the bytes.
	if err := os.Link(src, dst); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.EXDEV) {
		return err
	}
	return content.WriteBlob(ctx, s.cs, "berth-blob-"+d.Digest.String(), f, d)
}

// List reports no images: build cache records are never held back for
// images (the engine's images live in the engine's store, not here).
func (s *engineImages) List(context.Context, ...string) ([]images.Image, error) { return nil, nil }

func (s *engineImages) Create(context.Context, images.Image) (images.Image, error) {
	return images.Image{}, fmt.Errorf("the builder's image store is read-only: %w", cerrdefs.ErrNotImplemented)
}

func (s *engineImages) Update(context.Context, images.Image, ...string) (images.Image, error) {
	return images.Image{}, fmt.Errorf("the builder's image store is read-only: %w", cerrdefs.ErrNotImplemented)
}

func (s *engineImages) Delete(context.Context, string, ...images.DeleteOpt) error {
	return fmt.Errorf("the builder's image store is read-only: %w", cerrdefs.ErrNotImplemented)
}
