//go:build linux

package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client/pkg/progress"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// ImportRootFSOptions describe docker import: a root filesystem tarball made an
// image of one layer.
type ImportRootFSOptions struct {
	Ref      string   // tag to give it ("" for none)
	Message  string   // the history comment
	Changes  []string // Dockerfile instructions applied to the config (CMD, ENV …)
	Platform string   // os/arch[/variant]; "" for this engine's
}

// ImportRootFS makes an image of the root filesystem tarball r (plain, gzip,
// bzip2, xz or zstd) and returns it. The tarball is hostile input: it is
// unpacked by the same rules as a pulled layer.
func (s *Store) ImportRootFS(ctx context.Context, r io.Reader, opts ImportRootFSOptions) (*Image, error) {
	cfg := v1.Config{}
	if err := ApplyChanges(&cfg, opts.Changes); err != nil {
		return nil, err
	}
	plat := v1.Platform{}
	if opts.Platform != "" {
		p, err := parsePlatform(opts.Platform)
		if err != nil {
			return nil, err
		}
		plat = p
	}
	var refs []string
	if opts.Ref != "" {
		refs = []string{opts.Ref}
	}
	img, err := s.Commit(ctx, CommitOptions{
		Layer: func(w io.Writer) (string, error) {
			plain, done, err := compression.Decompress(ctxReader{ctx, r})
			if err != nil {
				return "", errdefs.InvalidArgument("import: %v", err)
			}
			defer done()
			// Read as a tar alongside, so a stream that is none is the
			// client's error, named, before anything is unpacked.
			pr, pw := io.Pipe()
			tarErr := make(chan error, 1)
			go func() {
				tr := tar.NewReader(pr)
				for {
					_, err := tr.Next()
					if err == io.EOF {
						tarErr <- nil
						io.Copy(io.Discard, pr)
						return
					}
					if err != nil {
						tarErr <- err
						pr.CloseWithError(err)
						return
					}
				}
			}()
			h := sha256.New()
			_, err = io.Copy(io.MultiWriter(w, h, pw), plain)
			pw.CloseWithError(err)
			if terr := <-tarErr; terr != nil {
				return "", errdefs.InvalidArgument("import: not a tar archive: %v", terr)
			}
			if err != nil {
				return "", fmt.Errorf("import: %w", err)
			}
			return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
		},
		Config:   cfg,
		History:  v1.History{Comment: opts.Message, Created: v1.Time{Time: time.Now().UTC()}},
		Platform: plat,
		Refs:     refs,
	})
	if err != nil {
		return nil, err
	}
	s.event(events.ActionImport, img.ID, "")
	return img, nil
}

// Download opens a URL for docker import (fromSrc=URL) through the engine's
// proxy, reporting progress to out.
func (s *Store) Download(ctx context.Context, src string, out progress.Output) (io.ReadCloser, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.InvalidArgument("import source %q is neither - (the request body) nor an http(s) URL", src)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = ProxyFunc(s.opts.Proxy)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, errdefs.Unavailable("import from %s: %v", src, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errdefs.InvalidArgument("import from %s: %s", src, resp.Status)
	}
	progress.Message(out, "", "Downloading from "+u.String())
	return struct {
		io.Reader
		io.Closer
	}{progress.NewProgressReader(resp.Body, out, resp.ContentLength, "", "Importing"), resp.Body}, nil
}
