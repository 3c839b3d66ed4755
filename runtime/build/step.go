//go:build linux

package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/image"
)

// cached looks the step up; on a hit the stage moves to the cached image.
func (bs *buildState) cached(st *stageState, key string) bool {
	if bs.opts.NoCache {
		return false
	}
	id := bs.b.cache.get(key)
	if id == "" {
		return false
	}
	img, err := bs.b.cfg.Images.Get(id)
	if err != nil || img.Parent != st.imageID {
		return false
	}
	fmt.Fprintf(bs.out(), " ---> Using cache\n ---> %s\n", shortID(id))
	bs.hold(id)
	st.imageID = id
	return true
}

// hold keeps a step's image from prunes until the build ends.
func (bs *buildState) hold(id string) {
	bs.holds = append(bs.holds, bs.b.cfg.Images.Hold(id))
}

// record commits the step's image over the stage's and caches it; after
// (may be nil) runs once the image is made, before its ID is shown.
func (bs *buildState) record(ctx context.Context, st *stageState, key, createdBy string, layer func(io.Writer) (string, error), after func()) error {
	img, err := bs.b.cfg.Images.Commit(ctx, image.CommitOptions{Parent: st.imageID, Layer: layer, Config: st.config,
		History: v1.History{CreatedBy: createdBy}, Author: st.author})
	if after != nil {
		after()
	}
	if err != nil {
		return err
	}
	bs.hold(img.ID)
	if err := bs.b.cache.put(key, img.ID); err != nil {
		bs.b.log.Warn("build cache: record step", "err", err)
	}
	st.imageID = img.ID
	fmt.Fprintf(bs.out(), " ---> %s\n", shortID(img.ID))
	return nil
}

func (bs *buildState) chainOf(id string) (string, error) {
	if id == "" {
		return "", nil
	}
	img, err := bs.b.cfg.Images.Get(id)
	if err != nil {
		return "", err
	}
	return img.ChainID, nil
}

// commit finishes a step that changes the config and, through mutate (nil
// for none), files: mutate gets the step's root file system mounted and
// reports whether it changed anything.
func (bs *buildState) commit(ctx context.Context, st *stageState, createdBy, extra string, mutate func(root string) (bool, error)) error {
	key := cacheKey(st.imageID, createdBy, st.config, extra)
	if bs.cached(st, key) {
		return nil
	}
	var layer func(io.Writer) (string, error)
	if mutate != nil {
		chain, err := bs.chainOf(st.imageID)
		if err != nil {
			return err
		}
		skey := randomKey("build-")
		root, err := bs.b.cfg.Snapshots.Prepare(skey, chain)
		if err != nil {
			return err
		}
		defer bs.b.cfg.Snapshots.Remove(skey)
		changed, err := mutate(root)
		if err != nil {
			return err
		}
		if changed {
			layer = func(w io.Writer) (string, error) { return bs.b.cfg.Snapshots.Diff(skey, w) }
		}
	}
	return bs.record(ctx, st, key, createdBy, layer, nil)
}

type copyArgs struct {
	verb     string
	sd       instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	excludes []string
	parents  bool
	unpack   bool
}

// copyStep is COPY and ADD.
func (bs *buildState) copyStep(ctx context.Context, st *stageState, a copyArgs) error {
	if len(a.sd.SourceContents) > 0 {
		return errdefs.NotImplemented("%s with a here-document is not supported by Berth's builder", a.verb)
	}
	if a.parents {
		return errdefs.NotImplemented("%s --parents is not supported by Berth's builder", a.verb)
	}
	chmod, err := parseChmod(a.chmod)
	if err != nil {
		return err
	}
	dest := a.sd.DestPath
	if !path.IsAbs(dest) {
		wd := st.config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		trailing := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join(wd, dest)
		if trailing && dest != "/" {
			dest += "/"
		}
	}
	spec := &copySpec{verb: a.verb, srcs: a.sd.SourcePaths, dest: dest, chown: a.chown, chmod: chmod,
		unpack: a.verb == "ADD" && a.unpack, fromCtx: a.from == ""}
	if len(a.excludes) > 0 {
		if spec.excludes, err = patternmatcher.New(a.excludes); err != nil {
			return errdefs.InvalidArgument("invalid --exclude: %v", err)
		}
	}

	// The source: the context, or a stage's or image's root, mounted.
	var src source
	var what, extra string
	if a.from == "" {
		cs, err := newCtxSource(bs.bc)
		if err != nil {
			return err
		}
		defer cs.close()
		src = cs
	} else {
		from, err := newExpander(bs.lex, st.env()).word(a.from)
		if err != nil {
			return errdefs.InvalidArgument("--from=%s: %v", a.from, err)
		}
		id, where, err := bs.fromImage(ctx, from, st.index)
		if err != nil {
			return err
		}
		chain, err := bs.chainOf(id)
		if err != nil {
			return err
		}
		skey := randomKey("build-from-")
		root, err := bs.b.cfg.Snapshots.Prepare(skey, chain)
		if err != nil {
			return err
		}
		defer bs.b.cfg.Snapshots.Remove(skey)
		rs, err := newRootSource(root)
		if err != nil {
			return err
		}
		defer rs.close()
		src, what, extra = rs, where, "from:"+id
	}
	items, err := resolveSources(src, spec, what)
	if err != nil {
		return err
	}
	var label string
	if a.from == "" {
		sum, err := contentKey(src, items, spec.excludes)
		if err != nil {
			return err
		}
		kind := "multi"
		if len(items) == 1 {
			kind = "file"
			if items[0].n.typ == tar.TypeDir {
				kind = "dir"
			}
		}
		label = kind + ":" + sum
	} else {
		label = "--from=" + a.from + " " + strings.Join(a.sd.SourcePaths, " ")
	}
	createdBy := nop(st, fmt.Sprintf("%s %s in %s ", a.verb, label, dest))
	extra += fmt.Sprintf("\x00chown=%s\x00chmod=%s\x00exclude=%q\x00unpack=%v", a.chown, a.chmod, a.excludes, spec.unpack)
	return bs.commit(ctx, st, createdBy, extra, func(root string) (bool, error) {
		rw, err := newRootWriter(root, 0, 0)
		if err != nil {
			return false, err
		}
		defer rw.close()
		if rw.uid, rw.gid, err = parseChown(rw.root, a.chown); err != nil {
			return false, err
		}
		return true, copyItems(src, rw, spec, items)
	})
}

// fromImage resolves --from: an earlier stage (by name or index) or an
// image (pulled when missing).
func (bs *buildState) fromImage(ctx context.Context, ref string, current int) (id, where string, err error) {
	s, err := bs.stageRef(ref, current)
	if err != nil {
		return "", "", err
	}
	if s != nil {
		if s.imageID == "" {
			return "", "", errdefs.InvalidArgument("stage %s is empty (FROM scratch with no files)", ref)
		}
		return s.imageID, "stage " + ref, nil
	}
	img, err := bs.baseImage(ctx, ref, "")
	if err != nil {
		return "", "", err
	}
	return img.ID, "image " + ref, nil
}
