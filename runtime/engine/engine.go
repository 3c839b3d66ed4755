//go:build linux

// Package engine assembles the runtime (images, snapshots, containers,
// events) from one state root and wires the few cross-cutting rules between
// them, such as "an image used by a container cannot be removed".
// guest-agent/engineapi serves it over HTTP; nothing here speaks HTTP.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/runtime/build"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/network"
	"github.com/berth-dev/berth/runtime/snapshot"
	"github.com/berth-dev/berth/runtime/volume"
)

// Config is the engine's configuration, set by berth-agent's flags.
type Config struct {
	Root               string   // all state lives here
	InsecureRegistries []string // registries reached over plain HTTP (loopback always is)
	CgroupParent       string   // cgroup under which containers are placed (default "/berth")
	// HostGatewayIP is what host.docker.internal and host-gateway resolve
	// to; empty: the default bridge's gateway (the host itself, natively).
	HostGatewayIP netip.Addr
	// LogOpts are default json-file options for containers (--log-opt).
	LogOpts map[string]string
	// RegistryMirrors are tried before Docker Hub for its images.
	RegistryMirrors []string
	// Proxy is the HTTP(S) proxy for registries (pulls, pushes, logins,
	// search) and docker import's URLs.
	Proxy httpproxy.Config
	// DockerHub, for tests only, is the registry standing for docker.io.
	DockerHub string
	// HostSockets are the host's names of the engine's socket; a bind
	// mount of one gets EngineSocket (this engine's unix socket) instead.
	HostSockets  []string
	EngineSocket string
}

// Engine is the runtime assembled. Its parts are exported so the API layer
// can call them directly; cross-part rules are wired in New.
type Engine struct {
	Config     Config
	Events     *events.Bus
	Snapshots  *snapshot.Store
	Images     *image.Store
	Containers *container.Manager
	Builds     *build.Builder
	Networks   *network.Manager
	Volumes    *volume.Store
	Started    time.Time
	ID         string // stable engine ID, kept under Root

	lock *os.File // ROOT/engine.lock, held while the engine is open
}

// New opens (or creates) the engine state under cfg.Root.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("engine: no state root given")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/berth"
	}
	if err := container.CheckLogOpts(cfg.LogOpts); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := os.MkdirAll(cfg.Root, 0o711); err != nil {
		return nil, fmt.Errorf("engine: state root: %w", err)
	}
	lock, err := lockRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	id, err := engineID(cfg.Root)
	if err != nil {
		return nil, err
	}
	// Under emulation opening the state is much of a boot: each part's
	// time goes to the debug log.
	var took []any
	t := time.Now()
	lap := func(part string) {
		took = append(took, part, time.Since(t).Round(time.Millisecond))
		t = time.Now()
	}
	snaps, err := snapshot.Open(filepath.Join(cfg.Root, "snapshot"))
	if err != nil {
		return nil, fmt.Errorf("engine: snapshots: %w", err)
	}
	lap("snapshots")
	bus := events.New()
	images, err := image.New(image.Options{Root: filepath.Join(cfg.Root, "image"), Snapshots: snaps,
		Events: bus, InsecureRegistries: cfg.InsecureRegistries, Mirrors: cfg.RegistryMirrors, Proxy: cfg.Proxy,
		DockerHub: cfg.DockerHub})
	if err != nil {
		return nil, fmt.Errorf("engine: images: %w", err)
	}
	lap("images")
	networks, err := network.New(network.Config{Root: filepath.Join(cfg.Root, "network"), HostGateway: cfg.HostGatewayIP, Events: bus})
	if err != nil {
		return nil, fmt.Errorf("engine: networks: %w", err)
	}
	lap("networks")
	volumes, err := volume.New(filepath.Join(cfg.Root, "volumes"), bus, nil)
	if err != nil {
		networks.Close()
		return nil, fmt.Errorf("engine: volumes: %w", err)
	}
	lap("volumes")
	containers, err := container.New(ctx, container.Config{
		Root:         filepath.Join(cfg.Root, "containers"),
		RuntimeRoot:  filepath.Join(cfg.Root, "runtime"),
		CgroupParent: cfg.CgroupParent,
		Images:       func(_ context.Context, ref string) (*image.Image, error) { return images.Get(ref) },
		RootFS:       snaps,
		Networks:     networks,
		Volumes:      volumes,
		Events:       bus,
		LogOpts:      cfg.LogOpts,
		HostSockets:  cfg.HostSockets,
		EngineSocket: cfg.EngineSocket,
	})
	if err != nil {
		networks.Close()
		return nil, fmt.Errorf("engine: containers: %w", err)
	}
	// An image used by a container cannot be removed without force.
	images.SetInUse(containers.ImageUsers)
	// A volume a container mounts cannot be removed.
	volumes.SetInUse(containers.VolumeUsers)
	lap("containers")
	builds, err := build.New(build.Config{Root: filepath.Join(cfg.Root, "build"), Images: images, Snapshots: snaps, Containers: containers,
		ProxyArgs: proxyArgs(cfg.Proxy)})
	if err != nil {
		networks.Close()
		return nil, fmt.Errorf("engine: builder: %w", err)
	}
	lap("builds")
	slog.Debug("engine state opened", took...)
	ok = true
	return &Engine{Config: cfg, Events: bus, Snapshots: snaps, Images: images, Containers: containers, Builds: builds,
		Networks: networks, Volumes: volumes, Started: time.Now(), ID: id, lock: lock}, nil
}

// Close stops what is running and releases the state root: running
// containers are stopped in parallel, each with its own stop timeout.
func (e *Engine) Close(ctx context.Context) error {
	err := e.Containers.Close(ctx)
	// With every container stopped, the bridges and NAT rules go too.
	if nerr := e.Networks.Close(); nerr != nil && err == nil {
		err = nerr
	}
	e.lock.Close() // the root is free for the next engine
	return err
}

// proxyArgs are the predefined proxy build args for proxy, in both cases
// as Docker sets them.
func proxyArgs(proxy httpproxy.Config) map[string]string {
	args := map[string]string{}
	for k, v := range map[string]string{"HTTP_PROXY": proxy.HTTPProxy, "HTTPS_PROXY": proxy.HTTPSProxy, "NO_PROXY": proxy.NoProxy} {
		if v != "" {
			args[k], args[strings.ToLower(k)] = v, v
		}
	}
	return args
}
