//go:build linux

// berth-agent is the Berth engine: it serves the Docker Engine API and runs
// containers with libcontainer. In the VM it is PID 1; on a Linux host it
// runs as a plain root process (the "native" driver):
//
//	berth-agent --root /var/lib/berth --host unix:///run/berth/docker.sock
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/guest-agent/engineapi"
	"github.com/berth-dev/berth/guest-agent/pid1"
	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/engine"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	// libcontainer re-executes this binary as `berth-agent init` inside the
	// new namespaces; that process must do nothing but become the container.
	if container.IsInit() {
		container.Init()
		os.Exit(255) // Init only returns on failure, after reporting it.
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if os.Getpid() == 1 {
		// PID 1 of the VM: prepare the machine, then run the engine as a
		// child (this same binary, with flags) and reap everything else.
		pid1.Main(engineapi.Version)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		hosts, insecure listFlag
		root            = flag.String("root", "/var/lib/berth", "directory holding all engine state")
		cgroupParent    = flag.String("cgroup-parent", "/berth", "cgroup under which containers are placed")
		logLevel        = flag.String("log-level", "info", "debug, info, warn or error")
		showVersion     = flag.Bool("version", false, "print the version and exit")
		hostGateway     = flag.String("host-gateway-ip", "", "address host.docker.internal resolves to (default: the bridge's gateway, i.e. this host)")
	)
	flag.Var(&hosts, "host", "address to serve the Engine API on (repeatable): unix:///path or tcp://ip:port")
	flag.Var(&insecure, "insecure-registry", "registry host[:port] reached over plain HTTP (repeatable)")
	flag.Parse()
	if *showVersion {
		fmt.Println("berth-agent", engineapi.Version)
		return nil
	}
	if len(hosts) == 0 {
		hosts = listFlag{"unix:///run/berth/docker.sock"}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (it creates namespaces, cgroups and mounts)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var gw netip.Addr
	if *hostGateway != "" {
		var err error
		if gw, err = netip.ParseAddr(*hostGateway); err != nil {
			return fmt.Errorf("--host-gateway-ip: %w", err)
		}
	}
	eng, err := engine.New(ctx, engine.Config{Root: *root, InsecureRegistries: insecure, CgroupParent: *cgroupParent, HostGatewayIP: gw})
	if err != nil {
		return err
	}
	srv := engineapi.New(eng, log)

	var listeners []net.Listener
	for _, h := range hosts {
		l, err := transport.Listen(h)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	log.Info("engine ready", "root", *root, "hosts", hosts.String(), "version", engineapi.Version)

	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, l); err != nil {
				log.Error("serve", "addr", l.Addr(), "err", err)
				stop()
			}
		}()
	}
	<-ctx.Done()
	log.Info("shutting down")
	wg.Wait()
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return eng.Close(closeCtx)
}
