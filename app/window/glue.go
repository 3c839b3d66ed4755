//go:build desktop || bindings

package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/tray"
)

// processStart approximates the process's start for the first-paint figure.
var processStart = time.Now()

// glue adapts the services to Wails: events to runtime.EventsEmit (and to
// the tray), URLs and folder dialogs to the runtime, tray clicks to the
// services.
type glue struct {
	log     *slog.Logger
	backend *desktop.Backend
	tray    *tray.Tray

	mu  sync.Mutex
	ctx context.Context // the Wails runtime context, set at startup
}

func (g *glue) setContext(ctx context.Context) {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
}

func (g *glue) context() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx
}

// Emit implements desktop.Emitter.
func (g *glue) Emit(name string, data any) {
	g.tray.Emit(name, data)
	if ctx := g.context(); ctx != nil {
		runtime.EventsEmit(ctx, name, data)
	}
}

// OpenURL implements desktop.UI.
func (g *glue) OpenURL(u string) error {
	if ctx := g.context(); ctx != nil {
		runtime.BrowserOpenURL(ctx, u)
	}
	return nil
}

// PickFolder implements desktop.UI.
func (g *glue) PickFolder(title string) (string, error) {
	ctx := g.context()
	if ctx == nil {
		return "", nil
	}
	return runtime.OpenDirectoryDialog(ctx, runtime.OpenDialogOptions{Title: title})
}

// Do implements tray.Actions.
func (g *glue) Do(a tray.Action) {
	m := g.backend.Machine()
	var err error
	switch a.Kind {
	case "start":
		_, err = m.Start()
	case "stop":
		_, err = m.Stop()
	case "restart":
		_, err = m.Restart()
	case "container", "open-port":
		err = g.containerAction(a)
	case "show":
		if ctx := g.context(); ctx != nil {
			runtime.WindowShow(ctx)
			runtime.WindowUnminimise(ctx)
		}
	case "quit":
		g.quit(m)
	}
	if err != nil {
		g.log.Warn("tray action", "action", a.Kind, "err", err)
		if ctx := g.context(); ctx != nil {
			runtime.MessageDialog(ctx, runtime.MessageDialogOptions{Type: runtime.ErrorDialog, Title: "Berth", Message: err.Error()})
		}
	}
}

func (g *glue) containerAction(a tray.Action) error {
	c := g.backend.Containers()
	if a.Kind == "open-port" {
		return c.OpenPort(a.Container, a.Port)
	}
	res, err := c.Bulk(a.Op, []string{a.Container})
	if err == nil && res[0].Error != "" {
		err = errors.New(res[0].Error)
	}
	return err
}

// quit asks whether to stop the VM too, then ends the app.
func (g *glue) quit(m *desktop.Machine) {
	ctx := g.context()
	if ctx == nil {
		os.Exit(0)
	}
	if st := m.Status(); st.Hostd && st.Status.State == "running" {
		answer, err := runtime.MessageDialog(ctx, runtime.MessageDialogOptions{Type: runtime.QuestionDialog, Title: "Quit Berth",
			Message: "Stop the Berth VM too? Containers stop with it. Choose No to keep it running for the docker CLI.",
			Buttons: []string{"Yes", "No"}, DefaultButton: "No"})
		if err == nil && answer == "Yes" {
			if err := m.Quit(true); err != nil {
				g.log.Warn("stop the VM", "err", err)
			}
		}
	}
	runtime.Quit(ctx)
}

// App is bound for the window's own needs.
type App struct{ g *glue }

// Ready is called by the frontend after its first paint; the figure goes
// to the log and, for `make bench`, to $BERTH_DESKTOP_READY_FILE.
func (a *App) Ready() {
	ms := time.Since(processStart).Milliseconds()
	a.g.log.Info("window ready", "ms", ms)
	if p := os.Getenv("BERTH_DESKTOP_READY_FILE"); p != "" {
		// A marker for the benchmark, not state: rename without fsync.
		if os.WriteFile(p+".tmp", []byte(strconv.FormatInt(ms, 10)+"\n"), 0o644) == nil {
			os.Rename(p+".tmp", p)
		}
	}
	trimMemory()
}
