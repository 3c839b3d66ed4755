//go:build desktop || bindings

// Command berth-desktop is Berth's window and tray (Wails v2). This file is
// only the entry and the embedded page: the services live in app/desktop,
// the tray in app/tray, app/window adapts them to the Wails runtime. Build
// with `make desktop`.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/tray"
	"github.com/berth-dev/berth/app/window"
)

//go:embed all:frontend/dist
var assets embed.FS

//go:embed build/appicon.png
var appIcon []byte

func main() {
	// The window needs no accelerated compositing (no 3D, no WebGL); without
	// it WebKitGTK paints sooner and avoids GPU-driver trouble on Linux.
	if runtime.GOOS == "linux" && os.Getenv("WEBKIT_DISABLE_COMPOSITING_MODE") == "" {
		os.Setenv("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
	}
	window.TuneWebKit()
	hidden := flag.Bool("hidden", false, "start with only the tray icon (as at login)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	paths, err := config.DefaultPaths()
	if err != nil {
		fatal(err)
	}
	g := window.New(log)
	backend, err := desktop.New(desktop.Options{Paths: paths, Emitter: g, UI: g, Log: log})
	if err != nil {
		fatal(err)
	}
	t := tray.New(g, log)
	g.Attach(backend, t)
	endTray, hasTray := t.Start() // on the main thread, before wails.Run
	defer endTray()
	if !hasTray {
		*hidden = false // nothing but the window would be left to reopen it
	}

	err = wails.Run(&options.App{
		Title:             "Berth",
		Width:             1180,
		Height:            760,
		MinWidth:          900,
		MinHeight:         560,
		StartHidden:       *hidden,
		HideWindowOnClose: hasTray, // the tray keeps running; Quit is in its menu
		BackgroundColour:  &options.RGBA{R: 0xf6, G: 0xf7, B: 0xf9, A: 0xff},
		AssetServer:       &assetserver.Options{Assets: assets},
		OnStartup: func(ctx context.Context) {
			g.SetContext(ctx)
			backend.Run()
		},
		OnShutdown: func(context.Context) { backend.Close() },
		Bind:       append(backend.Services(), &App{g: g}),
		Linux:      &linux.Options{ProgramName: "berth", Icon: appIcon, WebviewGpuPolicy: linux.WebviewGpuPolicyNever},
	})
	if err != nil {
		fatal(err)
	}
}

// App is bound for the window's own needs (bound from package main, so the
// page's generated bindings are main.App's).
type App struct{ g *window.Glue }

// Ready is called by the frontend after its first paint.
func (a *App) Ready() { a.g.Ready() }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "berth-desktop:", err)
	os.Exit(1)
}
