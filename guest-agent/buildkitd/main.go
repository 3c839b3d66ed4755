//go:build linux

// berth-buildkitd is the engine's BuildKit builder, a process of its own:
// berth-agent starts it on the first BuildKit request and hands it the
// connections of POST /grpc and /session as they come (buildx's docker
// driver dials those through the engine, as with dockerd). Apart from the
// engine, BuildKit's code never runs in a container's init (which is
// berth-agent re-executed) and a builder crash cannot take containers down.
//
//	berth-buildkitd --root ROOT/buildkit --engine ROOT/buildkit/run/engine.sock --listen ROOT/buildkit/run/buildkitd.sock
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/util/bklog"
	"github.com/moby/buildkit/version"
	"github.com/sirupsen/logrus"

	"github.com/berth-dev/berth/runtime/buildkit"
	"github.com/berth-dev/berth/runtime/container"
)

func init() {
	// libcontainer re-executes this binary as `berth-buildkitd init` to
	// become a RUN step's init inside its new namespaces.
	if container.IsInit() {
		container.Init()
		os.Exit(255)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-buildkitd:", err)
		os.Exit(1)
	}
}

// setVersion reports the BuildKit module this binary was built with (what
// `docker buildx ls` shows), read from the build information rather than
// set at link time.
func setVersion() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, m := range bi.Deps {
		if m.Path == "github.com/moby/buildkit" {
			version.Version = m.Version
			version.Package = m.Path
		}
	}
}

func run() error {
	var (
		insecure     listFlag
		mirrors      listFlag
		root         = flag.String("root", "", "directory holding the builder's state")
		engineSock   = flag.String("engine", "", "the engine's private socket for its builder")
		listen       = flag.String("listen", "", "unix socket to serve /grpc and /session on")
		cgroupParent = flag.String("cgroup-parent", "/berth", "cgroup under which RUN steps are placed (in PARENT/buildkit)")
		hostGateway  = flag.String("host-gateway-ip", "", "what host-gateway resolves to in --add-host")
		maxUsed      = flag.Int64("max-used-space", 0, "bytes of build cache kept after a build (0: a share of the disk)")
		logLevel     = flag.String("log-level", "info", "debug, info, warn or error")
	)
	flag.Var(&insecure, "insecure-registry", "registry host[:port] reached over plain HTTP (repeatable)")
	flag.Var(&mirrors, "registry-mirror", "registry mirror (http(s)://host[:port]) tried before Docker Hub (repeatable)")
	flag.Parse()
	if *root == "" || *engineSock == "" || *listen == "" {
		return errors.New("--root, --engine and --listen are required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	// BuildKit logs through logrus, to the same stream: everything when
	// debugging, else errors only (its warnings are about features this
	// builder does not use: fs-verity, tracing).
	logrus.SetOutput(os.Stderr)
	if level <= slog.LevelDebug {
		logrus.SetLevel(logrus.DebugLevel)
	} else {
		logrus.SetLevel(logrus.ErrorLevel)
	}
	bklog.L = logrus.NewEntry(logrus.StandardLogger())
	setVersion()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	t0 := time.Now()
	b, err := buildkit.New(ctx, buildkit.Config{
		Root:               *root,
		Engine:             newEngineClient(*engineSock),
		CgroupParent:       *cgroupParent,
		InsecureRegistries: insecure,
		RegistryMirrors:    mirrors,
		// The engine gives its proxy in the environment (HTTP_PROXY …),
		// where BuildKit's clients read it; builds get it as build args.
		ProxyBuildArgs: buildkit.ProxyBuildArgs(os.Getenv("HTTP_PROXY"), os.Getenv("HTTPS_PROXY"), os.Getenv("NO_PROXY")),
		HostGatewayIP:  *hostGateway,
		MaxUsedSpace:   *maxUsed,
		Log:            log,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	os.Remove(*listen)
	l, err := net.Listen("unix", *listen)
	if err != nil {
		return err
	}
	if err := os.Chmod(*listen, 0o600); err != nil {
		return err
	}
	log.Info("builder ready", "root", *root, "took", time.Since(t0))
	return serve(ctx, l, b, *root, log)
}
