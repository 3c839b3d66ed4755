// Command desktopweb serves the desktop frontend (frontend/dist) to an
// ordinary browser with the real services behind it (internal/webbridge),
// against the engine at -docker-host. It is how the browser-driven
// end-to-end test and the README screenshots run the window's code
// without WebKit; it listens on loopback only.
//
//	go run ./internal/tools/desktopweb -dist frontend/dist -docker-host unix:///…/docker.sock
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/internal/webbridge"
)

// App stands in for the window's own bound App (main.App in the real
// binary): the page reports its first paint to it.
type App struct{}

// Ready is called by the page after its first paint.
func (*App) Ready() {}

// server is a running bridge.
type server struct {
	URL     string
	Bridge  *webbridge.Bridge
	Backend *desktop.Backend
	close   func()
}

// start serves dist with a backend for dockerHost on a loopback port.
func start(dist, dockerHost string, paths config.Paths, log *slog.Logger) (*server, error) {
	br := webbridge.New(os.DirFS(dist))
	be, err := desktop.New(desktop.Options{Paths: paths, DockerHost: dockerHost, Emitter: br, UI: br, Log: log})
	if err != nil {
		return nil, err
	}
	for _, s := range be.Services() {
		br.Bind(s)
	}
	br.Bind(&App{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		be.Close()
		return nil, err
	}
	hs := &http.Server{Handler: br}
	go hs.Serve(l)
	be.Run()
	url := fmt.Sprintf("http://%s/?token=%s", l.Addr(), br.Token())
	return &server{URL: url, Bridge: br, Backend: be, close: func() {
		hs.Shutdown(context.Background())
		be.Close()
	}}, nil
}

func main() {
	dist := flag.String("dist", "frontend/dist", "the built frontend")
	host := flag.String("docker-host", os.Getenv("DOCKER_HOST"), "the engine")
	flag.Parse()
	paths, err := config.DefaultPaths()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := start(*dist, *host, paths, slog.Default())
	if err != nil {
		fmt.Fprintln(os.Stderr, "desktopweb:", err)
		os.Exit(1)
	}
	fmt.Println(s.URL)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	s.close()
}
