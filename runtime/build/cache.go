//go:build linux

package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/build"
)

// The cache maps a step's key to the image the step made. The key covers
// everything the result depends on: the parent image (so a changed step
// changes every key after it), the step as expanded (its history text),
// the config it leaves, and what it reads (the content digests of copied
// files; the build args a RUN sees). Entries are one small file each, so
// a cached rebuild only reads.
type cacheIndex struct {
	dir string
}

func cacheKey(parent, createdBy string, cfg v1.Config, extra string) string {
	b, _ := json.Marshal(cfg)
	h := sha256.New()
	fmt.Fprintf(h, "berth-build-v1\x00%s\x00%s\x00%s\x00%s", parent, createdBy, b, extra)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *cacheIndex) get(key string) string {
	b, err := os.ReadFile(filepath.Join(c.dir, key))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// put records a step. The entry is renamed into place but not synced: a
// crash can at worst lose it (an empty or missing file is a miss and the
// step runs again), and two fsyncs per step are a good part of a build's
// time on a busy disk.
func (c *cacheIndex) put(key, id string) error {
	f, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op once renamed
	_, err = f.WriteString(id + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(c.dir, key))
}

// entries lists key → image ID.
func (c *cacheIndex) entries() (map[string]string, error) {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, de := range des {
		if len(de.Name()) != 64 {
			continue
		}
		if id := c.get(de.Name()); id != "" {
			out[de.Name()] = id
		}
	}
	return out, nil
}

func (c *cacheIndex) remove(key string) error {
	if err := os.Remove(filepath.Join(c.dir, key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Prune is `docker builder prune`: it removes the images builds made as
// steps (untagged, unused by containers) and their cache entries. Without
// all, steps of tagged images stay (rebuilding those stays fast); with
// all, every step image goes. Space reclaimed counts the layers freed.
func (b *Builder) Prune(ctx context.Context, all bool) (build.CachePruneReport, error) {
	var report build.CachePruneReport
	entries, err := b.cache.entries()
	if err != nil {
		return report, err
	}
	keep := map[string]bool{} // ancestors of tagged images
	if !all {
		for _, img := range b.cfg.Images.List() {
			if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
				continue
			}
			for p := img.Parent; p != "" && !keep[p]; {
				keep[p] = true
				pi, err := b.cfg.Images.Get(p)
				if err != nil {
					break
				}
				p = pi.Parent
			}
		}
	}
	sizes := map[string]int64{}
	if layers, err := b.cfg.Snapshots.Layers(); err == nil {
		for _, l := range layers {
			sizes[l.ChainID] = l.Size
		}
	}
	for key, id := range entries {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		img, err := b.cfg.Images.Get(id)
		if err != nil {
			b.cache.remove(key) // the image went some other way
			continue
		}
		if keep[id] || len(img.RepoTags) > 0 || len(img.RepoDigests) > 0 {
			continue
		}
		resp, err := b.cfg.Images.Remove(ctx, id, false)
		if err != nil {
			continue // in use by a container: kept
		}
		b.cache.remove(key)
		report.CachesDeleted = append(report.CachesDeleted, id)
		for _, r := range resp {
			report.SpaceReclaimed += uint64(sizes[r.Deleted])
		}
	}
	return report, nil
}
