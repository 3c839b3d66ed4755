//go:build linux

// Package build builds images from a Dockerfile and a build context as
// dockerd's classic builder does (the builder behind POST /build when the
// client has no BuildKit): every instruction is a step that commits a new
// image over the previous one, RUN steps run in real containers of the
// engine, COPY and ADD write into the step's root file system, and each
// step is cached under its parent image and its inputs, so an unchanged
// rebuild makes nothing and a changed file rebuilds from its step on.
// Dockerfiles are parsed with BuildKit's frontend packages; there is no
// BuildKit daemon.
package build

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/progress"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// Config configures a Builder.
type Config struct {
	Root       string // ROOT/build: the cache index and unpacked contexts
	Images     *image.Store
	Snapshots  *snapshot.Store
	Containers *container.Manager
	Log        *slog.Logger
	// ProxyArgs are the engine's proxy as predefined build args
	// (HTTP_PROXY …), given to builds that do not set them.
	ProxyArgs map[string]string
}

// Builder runs builds. It is safe for concurrent use.
type Builder struct {
	cfg   Config
	cache *cacheIndex
	log   *slog.Logger

	mu      sync.Mutex
	cancels map[string]context.CancelFunc // builds by build ID, for Cancel
}

// New opens the builder's state under cfg.Root; contexts and step roots a
// crash left behind are removed.
func New(cfg Config) (*Builder, error) {
	if cfg.Images == nil || cfg.Snapshots == nil || cfg.Containers == nil {
		return nil, fmt.Errorf("builder: images, snapshots and containers are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	tmp := filepath.Join(cfg.Root, "tmp")
	os.RemoveAll(tmp)
	// Step roots a crash left mounted or on disk.
	if keys, err := cfg.Snapshots.Keys(); err == nil {
		for k := range keys {
			if strings.HasPrefix(k, "build-") {
				if err := cfg.Snapshots.Remove(k); err != nil {
					cfg.Log.Warn("builder: remove leftover step root", "key", k, "err", err)
				}
			}
		}
	}
	for _, d := range []string{tmp, filepath.Join(cfg.Root, "cache")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(cfg.Root, "cache", ".tmp-*"))
	for _, p := range leftovers {
		os.Remove(p)
	}
	return &Builder{cfg: cfg, cache: &cacheIndex{dir: filepath.Join(cfg.Root, "cache")}, log: cfg.Log,
		cancels: map[string]context.CancelFunc{}}, nil
}

// Options is one build request (POST /build's parameters).
type Options struct {
	Dockerfile  string             // path of the Dockerfile in the context ("Dockerfile")
	Tags        []string           // references tagged once the build succeeds
	BuildArgs   map[string]*string // --build-arg; nil values fall back to the ARG's default
	Target      string             // the last stage to build ("" for the last one)
	Labels      map[string]string  // added to the final image
	NoCache     bool
	Pull        bool // pull base images even when present
	Remove      bool // remove intermediate containers after a successful step
	ForceRemove bool // ... and after a failed one
	Platform    string
	Auth        map[string]registry.AuthConfig // X-Registry-Config: by registry host
	BuildID     string                         // names the build for Cancel
	Run         RunOptions                     // how RUN containers run

	Stdout   io.Writer       // the build's log, as lines ("Step 1/3 : …")
	Stderr   io.Writer       // RUN steps' standard error (nil: Stdout)
	Progress progress.Output // pulls of base images
}

// RunOptions are the resources and network of RUN containers.
type RunOptions struct {
	NetworkMode  string
	ExtraHosts   []string
	Memory       int64
	MemorySwap   int64
	CPUShares    int64
	CPUSetCPUs   string
	CPUSetMems   string
	CPUQuota     int64
	CPUPeriod    int64
	ShmSize      int64
	CgroupParent string
}

// ExitError is a RUN step whose command failed; the client exits with Code.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// StepError names the step a build failed at.
type StepError struct {
	Step, Total int
	Instruction string
	Err         error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d/%d (%s): %v", e.Step, e.Total, e.Instruction, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Build runs a build over the context tar (plain or compressed) and
// returns the new image's ID. Tags are set only once every step succeeded.
func (b *Builder) Build(ctx context.Context, contextTar io.Reader, opts Options) (string, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = opts.Stdout
	}
	if opts.Progress == nil {
		opts.Progress = progress.DiscardOutput()
	}
	if err := checkPlatform(opts.Platform); err != nil {
		return "", err
	}
	if len(b.cfg.ProxyArgs) > 0 {
		args := maps.Clone(opts.BuildArgs)
		if args == nil {
			args = map[string]*string{}
		}
		for k, v := range b.cfg.ProxyArgs {
			if _, ok := args[k]; !ok {
				args[k] = &v
			}
		}
		opts.BuildArgs = args
	}
	for _, t := range opts.Tags {
		if _, err := image.ParseRef(t); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.BuildID != "" {
		b.mu.Lock()
		b.cancels[opts.BuildID] = cancel
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			delete(b.cancels, opts.BuildID)
			b.mu.Unlock()
		}()
	}
	dir, err := os.MkdirTemp(filepath.Join(b.cfg.Root, "tmp"), "context-")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(dir)
	bc, err := unpackContext(contextTar, dir)
	if err != nil {
		return "", err
	}
	df, err := readDockerfile(bc, opts.Dockerfile)
	if err != nil {
		return "", err
	}
	if err := bc.applyIgnore(); err != nil {
		return "", err
	}
	plan, err := parseDockerfile(df, opts)
	if err != nil {
		return "", err
	}
	bs := &buildState{b: b, opts: &opts, bc: bc, plan: plan, consumed: map[string]bool{}}
	defer func() {
		for _, release := range bs.holds {
			release()
		}
	}()
	id, err := bs.run(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return "", errdefs.As(errdefs.KindCanceled, fmt.Errorf("build canceled: %w", err))
		}
		return "", err
	}
	if unused := bs.unusedArgs(); len(unused) > 0 {
		fmt.Fprintf(opts.Stdout, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	fmt.Fprintf(opts.Stdout, "Successfully built %s\n", shortID(id))
	for _, t := range opts.Tags {
		// Tagged again even when the tag names this image already, as
		// dockerd tags (an event and a new tag time).
		if err := b.cfg.Images.Tag(id, t); err != nil {
			return id, err
		}
		fmt.Fprintf(opts.Stdout, "Successfully tagged %s\n", image.Familiar(mustRef(t)))
	}
	return id, nil
}

func mustRef(t string) string {
	if n, err := image.ParseRef(t); err == nil {
		return n.String()
	}
	return t
}

// Cancel stops the build started with buildID.
func (b *Builder) Cancel(buildID string) error {
	b.mu.Lock()
	cancel := b.cancels[buildID]
	b.mu.Unlock()
	if cancel == nil {
		return errdefs.NotFound("no build with ID %s", buildID)
	}
	cancel()
	return nil
}

// readDockerfile finds the Dockerfile in the context (through its
// symlinks, never out of it); "Dockerfile" falls back to "dockerfile".
func readDockerfile(bc *buildContext, name string) ([]byte, error) {
	if name == "" {
		name = "Dockerfile"
	}
	candidates := []string{name}
	if name == "Dockerfile" {
		candidates = append(candidates, "dockerfile")
	}
	for _, c := range candidates {
		rel, ok := cleanRel(strings.TrimLeft(c, "/"))
		if !ok { // dockerd's words and status (500)
			return nil, errdefs.As(errdefs.KindUnknown, fmt.Errorf("forbidden path outside the build context: %s ()", name))
		}
		real, err := bc.resolve(rel, true)
		if err != nil && !errors.Is(err, errNotInContext) {
			return nil, errdefs.InvalidArgument("Dockerfile %s: %v", name, err)
		}
		if e := bc.entries[real]; err == nil && e != nil && e.typ == tar.TypeReg {
			b, err := bc.readFile(real, 16<<20)
			if err != nil {
				return nil, errdefs.InvalidArgument("read Dockerfile %s: %v", name, err)
			}
			return b, nil
		}
	}
	return nil, errdefs.As(errdefs.KindUnknown, fmt.Errorf("Cannot locate specified Dockerfile: %s", name)) // a 500, as dockerd's
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func randomKey(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkPlatform accepts this engine's own platform only: RUN steps
// execute here, and there is no emulation.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if parts[0] != "linux" || (len(parts) > 1 && parts[1] != goruntime.GOARCH) || len(parts) > 3 {
		return errdefs.InvalidArgument("platform %q is not supported: this engine builds for linux/%s", p, goruntime.GOARCH)
	}
	return nil
}
