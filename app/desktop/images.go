package desktop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/buildctx"
	"github.com/berth-dev/berth/app/buildprogress"
)

// Image is one row of the Images view.
type Image struct {
	ID         string   `json:"id"`
	Tags       []string `json:"tags"` // repo:tag; empty for dangling images
	Size       int64    `json:"size"`
	Created    int64    `json:"created"`
	Containers int64    `json:"containers"` // -1 when the engine did not count
}

// Images is the Images view's service.
type Images struct{ b *Backend }

// HelloImage is the tiny image bundled with the VM image (preloaded on
// first boot) that the first-run card runs.
const HelloImage = "berth/hello:latest"

// List returns the images, newest first.
func (im *Images) List() ([]Image, error) {
	ctx, cancel := im.b.opCtx(15 * time.Second)
	defer cancel()
	return im.b.listImages(ctx)
}

func (b *Backend) listImages(ctx context.Context) ([]Image, error) {
	res, err := b.docker.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, engineError("list images", err)
	}
	out := make([]Image, 0, len(res.Items))
	for _, s := range res.Items {
		tags := []string{}
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				tags = append(tags, t)
			}
		}
		out = append(out, Image{ID: s.ID, Tags: tags, Size: s.Size, Created: s.Created, Containers: s.Containers})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

// Remove deletes an image; force also removes it when tagged twice or used
// by stopped containers, as `docker rmi -f` does.
func (im *Images) Remove(ref string, force bool) error {
	ctx, cancel := im.b.opCtx(time.Minute)
	defer cancel()
	_, err := im.b.docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: force})
	return engineError("remove "+shortImageID(ref), err)
}

// OpProgress is the state of a pull or a build, sent as "op:ID" events
// (at most ten a second) and once more with Done at the end.
type OpProgress struct {
	Kind   string          `json:"kind"` // pull, build
	Ref    string          `json:"ref"`
	Status string          `json:"status"` // the latest overall line ("Digest: …", "Step 2/4 : …")
	Layers []LayerProgress `json:"layers,omitempty"`
	Lines  []string        `json:"lines,omitempty"` // build output since the last event
	Done   bool            `json:"done,omitempty"`
	Error  string          `json:"error,omitempty"`
	// ImageID is the built image (builds only).
	ImageID string `json:"imageID,omitempty"`
}

// LayerProgress is one layer of a pull.
type LayerProgress struct {
	ID      string `json:"id"`
	Status  string `json:"status"` // Waiting, Downloading, Extracting, Pull complete, Already exists…
	Current int64  `json:"current"`
	Total   int64  `json:"total"`
}

// op accumulates one operation's progress and emits it, throttled.
type op struct {
	b     *Backend
	event string
	mu    sync.Mutex
	p     OpProgress
	index map[string]int
	last  time.Time
	dirty bool
	timer *time.Timer
}

func (b *Backend) newOp(id, kind, ref string) *op {
	return &op{b: b, event: EventOp + ":" + id, p: OpProgress{Kind: kind, Ref: ref}, index: map[string]int{}}
}

// message folds one JSON progress message into the state.
func (o *op) message(m jsonstream.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case m.Stream != "":
		for _, l := range strings.SplitAfter(m.Stream, "\n") {
			if l == "" {
				continue
			}
			l = strings.TrimSuffix(l, "\n")
			o.p.Lines = append(o.p.Lines, l)
			if strings.HasPrefix(l, "Step ") || isBuildKitStep(l) {
				o.p.Status = l
			}
		}
	case m.ID != "" && m.Status != "" && isLayerStatus(m.Status):
		i, ok := o.index[m.ID]
		if !ok {
			i = len(o.p.Layers)
			o.index[m.ID] = i
			o.p.Layers = append(o.p.Layers, LayerProgress{ID: m.ID})
		}
		l := &o.p.Layers[i]
		l.Status = m.Status
		if m.Progress != nil && m.Progress.Total > 0 {
			l.Current, l.Total = m.Progress.Current, m.Progress.Total
		} else if strings.HasSuffix(m.Status, "complete") || m.Status == "Already exists" {
			l.Current = l.Total
		}
	case m.Status != "":
		o.p.Status = strings.TrimSpace(m.ID + " " + m.Status)
		if o.p.Kind == "build" {
			o.p.Lines = append(o.p.Lines, o.p.Status)
		}
	}
	if m.Aux != nil && o.p.Kind == "build" {
		var aux struct{ ID string }
		if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
			o.p.ImageID = aux.ID
		}
	}
	o.dirty = true
	if time.Since(o.last) >= 100*time.Millisecond {
		o.flushLocked()
	} else if o.timer == nil {
		o.timer = time.AfterFunc(100*time.Millisecond, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.timer = nil
			if o.dirty {
				o.flushLocked()
			}
		})
	}
}

// isLayerStatus tells per-layer lines ("Downloading", "Pull complete")
// from per-image ones that also carry an ID (a tag: "latest: Pulling from …").
func isLayerStatus(s string) bool {
	for _, p := range []string{"Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
		"Extracting", "Pull complete", "Already exists", "Retrying"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (o *op) flushLocked() {
	o.last, o.dirty = time.Now(), false
	p := o.p
	p.Layers = append([]LayerProgress(nil), o.p.Layers...)
	o.p.Lines = nil // lines are sent once
	o.b.emit.Emit(o.event, p)
}

func (o *op) finish(err error) OpProgress {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.p.Done = true
	if err != nil {
		o.p.Error = err.Error()
	}
	final := o.p
	o.flushLocked()
	return final
}

// Pull pulls ref, reporting per-layer progress as "op:ID" events, and
// returns the operation ID at once; Cancel stops it.
func (im *Images) Pull(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", errors.New("pull: name an image, e.g. busybox or registry.example.com/app:1.0")
	}
	b := im.b
	id, ctx, _ := b.streams.add(b.ctx)
	o := b.newOp(id, "pull", ref)
	go func() {
		defer b.streams.done(id)
		o.finish(b.pull(ctx, ref, o))
	}()
	return id, nil
}

func (b *Backend) pull(ctx context.Context, ref string, o *op) error {
	resp, err := b.docker.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return engineError("pull "+ref, err)
	}
	defer resp.Close()
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return engineError("pull "+ref, err)
		}
		if m.Error != nil {
			return &UserError{Action: "pull " + ref, Message: m.Error.Message}
		}
		o.message(m)
	}
	return engineError("pull "+ref, ctx.Err())
}

// Cancel stops a running pull or build.
func (im *Images) Cancel(opID string) bool { return im.b.streams.cancel(opID) }

// PickFolder asks the user for a build folder (the native folder dialog).
func (im *Images) PickFolder() (string, error) {
	if im.b.ui == nil {
		return "", errors.New("no window to show a folder dialog")
	}
	return im.b.ui.PickFolder("Choose a folder with a Dockerfile")
}

// Build builds the folder dir (with its Dockerfile, honouring
// .dockerignore) and tags the result; output streams as "op:ID" events.
func (im *Images) Build(dir, tag string) (string, error) {
	b := im.b
	tag = strings.TrimSpace(tag)
	if tag != "" {
		if err := validImageRef(tag); err != nil {
			return "", fmt.Errorf("build: tag %q: %w", tag, err)
		}
	}
	ctxTar, _, err := buildctx.Tar(dir, "")
	if err != nil {
		return "", err
	}
	id, ctx, _ := b.streams.add(b.ctx)
	o := b.newOp(id, "build", tag)
	go func() {
		defer b.streams.done(id)
		defer ctxTar.Close()
		o.finish(b.build(ctx, ctxTar, tag, o))
	}()
	return id, nil
}

// build runs a BuildKit build through the Engine API (POST /build with
// version=2, as dockerd takes it) and streams BuildKit's progress, as
// `docker build --progress=plain` prints it, into the op's lines.
func (b *Backend) build(ctx context.Context, tarball io.Reader, tag string, o *op) error {
	opts := client.ImageBuildOptions{Dockerfile: "Dockerfile", Version: build.BuilderBuildKit}
	if tag != "" {
		opts.Tags = []string{tag}
	}
	res, err := b.docker.ImageBuild(ctx, tarball, opts)
	if err != nil {
		return engineError("build", err)
	}
	defer res.Body.Close()
	if _, err := buildprogress.Read(ctx, res.Body, opLines{o}); err != nil {
		var berr *buildprogress.BuildError
		if errors.As(err, &berr) {
			return &UserError{Action: "build", Message: berr.Message}
		}
		if ctx.Err() != nil {
			return engineError("build", ctx.Err())
		}
		return engineError("build", err)
	}
	return nil
}

// opLines feeds progress text to an op as output lines.
type opLines struct{ o *op }

func (w opLines) Write(p []byte) (int, error) {
	w.o.message(jsonstream.Message{Stream: string(p)})
	return len(p), nil
}

// isBuildKitStep reports whether a plain progress line opens a step:
// "#5 [2/3] RUN make".
func isBuildKitStep(l string) bool {
	num, rest, ok := strings.Cut(l, " ")
	return ok && len(num) > 1 && num[0] == '#' && strings.HasPrefix(rest, "[")
}

func shortImageID(ref string) string {
	if strings.HasPrefix(ref, "sha256:") && len(ref) > 19 {
		return ref[7:19]
	}
	return ref
}
