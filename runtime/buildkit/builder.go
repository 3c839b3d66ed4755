//go:build linux

// Package buildkit assembles BuildKit (github.com/moby/buildkit) for the
// engine, the way dockerd's builder-next does for dockerd: one worker whose
// RUN steps are containers of the engine's own runtime, a content store and
// overlay snapshots under the engine's root, the engine's local images as
// the worker's image store, and a "moby" exporter that hands each built
// image to the engine's store. It runs in the builder process
// (guest-agent/buildkitd), never in the engine: BuildKit's package
// initialisers would otherwise run at every container start.
package buildkit

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/core/diff/apply"
	ctdmetadata "github.com/containerd/containerd/v2/core/metadata"
	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/diff/walking"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/metadata"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/solver/pb"
	httpsource "github.com/moby/buildkit/source/http"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/network"
	"github.com/moby/buildkit/util/resolver"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"
	"github.com/moby/buildkit/util/winlayers"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	wlabel "github.com/moby/buildkit/worker/label"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/runtime/container"
)

// snapshotterName is the snapshotter's name in BuildKit's metadata: the
// overlay one, whose layers BuildKit diffs from the upper directory alone.
const snapshotterName = "overlayfs"

// Config is the builder's configuration, set by berth-buildkitd's flags.
type Config struct {
	Root         string // BuildKit's state: content, snapshots, cache, history
	Engine       Engine
	CgroupParent string // steps run in CGROUP_PARENT/buildkit/<id>
	// InsecureRegistries are reached over plain HTTP, as the engine's
	// --insecure-registry (loopback always is).
	InsecureRegistries []string
	// RegistryMirrors (http(s)://host[:port]) are tried before Docker Hub
	// for its images, as the engine's.
	RegistryMirrors []string
	// ProxyBuildArgs are given to every build that does not set them
	// (ProxyBuildArgs); the builder's own registry and git clients take
	// the proxy from its environment.
	ProxyBuildArgs map[string]string
	HostGatewayIP  string // what --add-host NAME:host-gateway resolves to
	// MaxUsedSpace bounds the cache: past it, garbage collection after a
	// build removes the least recently used records. 0: BuildKit's default
	// (a share of the disk).
	MaxUsedSpace int64
	Log          *slog.Logger
}

// Builder is BuildKit's controller with Berth's worker.
type Builder struct {
	controller *control.Controller
	sessions   *session.Manager
	worker     *mobyWorker
	uploads    *uploads
	maxUsed    int64
	collecting sync.Mutex
	cgroup     string // where the steps' cgroups are made
	proxyArgs  map[string]string
	log        *slog.Logger
}

// New opens the builder's state under cfg.Root.
func New(ctx context.Context, cfg Config) (*Builder, error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, err
	}
	sessions, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	up := &uploads{files: map[string]string{}, next: http.DefaultTransport}
	w, err := newWorker(ctx, cfg, up)
	if err != nil {
		return nil, err
	}
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, err
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
	}
	gw, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, err
	}
	frontends["gateway.v0"] = gw
	cacheStore, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, err
	}
	historyDB, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	ctl, err := control.NewController(control.Opt{
		SessionManager:   sessions,
		WorkerController: wc,
		Frontends:        frontends,
		CacheManager:     solver.NewCacheManager(ctx, "local", cacheStore, worker.NewCacheResultStorage(wc)),
		// dockerd's defaults: RUN --network=host is allowed, --security=insecure is not.
		Entitlements:   []string{"network.host"},
		HistoryDB:      historyDB,
		CacheStore:     cacheStore,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
		GracefulStop:   ctx.Done(),
		// Remote cache import/export (--cache-from/--cache-to) is not
		// offered: both maps stay empty and BuildKit refuses them by name.
	})
	if err != nil {
		return nil, fmt.Errorf("buildkit controller: %w", err)
	}
	return &Builder{controller: ctl, sessions: sessions, worker: w, uploads: up, maxUsed: cfg.MaxUsedSpace,
		cgroup: filepath.Join("/", cfg.CgroupParent, "buildkit"), proxyArgs: cfg.ProxyBuildArgs, log: cfg.Log}, nil
}

// Register serves BuildKit's control API (and the gateway's) on s.
func (b *Builder) Register(s *grpc.Server) { b.controller.Register(s) }

// Sessions is the session manager that POST /session connections join.
func (b *Builder) Sessions() *session.Manager { return b.sessions }

// Close releases the builder's databases and the steps' cgroup parent.
func (b *Builder) Close() error {
	err := b.controller.Close()
	container.RemoveCgroup(b.cgroup)
	return err
}

// newWorker assembles the one worker, as buildkitd's OCI worker does, with
// Berth's executor, image store and exporter.
func newWorker(ctx context.Context, cfg Config, up *uploads) (*mobyWorker, error) {
	root := cfg.Root
	snap, err := overlay.NewSnapshotter(filepath.Join(root, "snapshots"), overlay.AsynchronousRemove)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	contentRoot := filepath.Join(root, "content")
	localStore, err := local.NewStore(contentRoot)
	if err != nil {
		return nil, err
	}
	db, err := boltutil.Open(filepath.Join(root, "containerdmeta.db"), 0o600, &bolt.Options{
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	mdb := ctdmetadata.NewDB(db, localStore, map[string]ctdsnapshot.Snapshotter{snapshotterName: snap})
	if err := mdb.Init(ctx); err != nil {
		return nil, err
	}
	cs := containerdsnapshot.NewContentStore(mdb.ContentStore(), "buildkit")
	md, err := metadata.NewStore(filepath.Join(root, "metadata_v2.db"))
	if err != nil {
		return nil, err
	}
	lm := leaseutil.WithNamespace(ctdmetadata.NewLeaseManager(mdb), "buildkit")
	id, err := base.ID(root)
	if err != nil {
		return nil, err
	}
	tasks, err := container.NewTasks(filepath.Join(root, "tasks"), cfg.Log)
	if err != nil {
		return nil, err
	}
	nets := map[pb.NetMode]network.Provider{
		pb.NetMode_UNSET: &bridgeProvider{eng: cfg.Engine},
		pb.NetMode_HOST:  network.NewHostProvider(),
		pb.NetMode_NONE:  network.NewNoneProvider(),
	}
	exe, err := newStepExecutor(filepath.Join(root, "executor"), tasks, nets, cfg.CgroupParent, cfg.Log)
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	labels := map[string]string{
		wlabel.Executor:       "oci",
		wlabel.Hostname:       hostname,
		wlabel.Network:        "bridge",
		wlabel.OCIProcessMode: "sandbox",
		// Read by buildx's docker driver for --add-host NAME:host-gateway.
		// No snapshotter label: with one, buildx would take the engine for
		// dockerd's containerd image store (OCI exports, multi-platform).
		"org.mobyproject.buildkit.worker.moby.host-gateway-ip": cfg.HostGatewayIP,
	}
	insecure := map[string]resolverconfig.RegistryConfig{}
	plain := true
	for _, h := range cfg.InsecureRegistries {
		insecure[h] = resolverconfig.RegistryConfig{PlainHTTP: &plain}
	}
	if len(cfg.RegistryMirrors) > 0 {
		hub := insecure["docker.io"]
		for _, m := range cfg.RegistryMirrors {
			u, err := url.Parse(m)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("registry mirror %q: want http(s)://host[:port]", m)
			}
			hub.Mirrors = append(hub.Mirrors, u.Host)
			if u.Scheme == "http" {
				rc := insecure[u.Host]
				rc.PlainHTTP = &plain
				insecure[u.Host] = rc
			}
		}
		insecure["docker.io"] = hub
	}
	dstat, _ := disk.GetDiskStat(root)
	gcCfg := config.GCConfig{}
	if cfg.MaxUsedSpace > 0 {
		gcCfg.GCMaxUsedSpace = config.DiskSpace{Bytes: cfg.MaxUsedSpace}
	}
	var gcPolicy []client.PruneInfo
	for _, rule := range config.DefaultGCPolicy(gcCfg, dstat) {
		gcPolicy = append(gcPolicy, client.PruneInfo{
			Filter: rule.Filters, All: rule.All, KeepDuration: rule.KeepDuration.Duration,
			ReservedSpace: rule.ReservedSpace.AsBytes(dstat), MaxUsedSpace: rule.MaxUsedSpace.AsBytes(dstat),
			MinFreeSpace: rule.MinFreeSpace.AsBytes(dstat),
		})
	}
	images := &engineImages{eng: cfg.Engine, cs: cs, lm: lm, blobDir: filepath.Join(contentRoot, "blobs")}
	opt := base.WorkerOpt{
		ID:               id,
		Root:             root,
		Labels:           labels,
		Platforms:        []ocispecs.Platform{platforms.Normalize(platforms.DefaultSpec())},
		GCPolicy:         gcPolicy,
		BuildkitVersion:  client.BuildkitVersion{Package: version.Package, Version: version.Version, Revision: version.Revision},
		NetworkProviders: nets,
		Executor:         exe,
		Snapshotter:      containerdsnapshot.NewSnapshotter(snapshotterName, mdb.Snapshotter(snapshotterName), "buildkit", nil),
		ContentStore:     cs,
		Applier:          winlayers.NewFileSystemApplierWithWindows(cs, apply.NewFileSystemApplier(cs)),
		Differ:           winlayers.NewWalkingDiffWithWindows(cs, walking.NewWalkingDiff(cs)),
		ImageStore:       images,
		RegistryHosts:    resolver.NewRegistryConfig(insecure),
		LeaseManager:     lm,
		GarbageCollect:   mdb.GarbageCollect,
		MetadataStore:    md,
		ContentMetadata:  db,
		MountPoolRoot:    filepath.Join(root, "cachemounts"),
	}
	bw, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, err
	}
	// http(s) sources go through the uploads, which serve the contexts
	// of POST /build?version=2 (and pass every other URL on).
	hs, err := httpsource.NewSource(httpsource.Opt{CacheAccessor: bw.CacheMgr, Transport: up})
	if err != nil {
		return nil, err
	}
	bw.SourceManager.Register(hs)
	bw.HTTPSource = hs
	return &mobyWorker{Worker: bw, eng: cfg.Engine, blobDir: images.blobDir}, nil
}
