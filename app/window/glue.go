//go:build desktop || bindings

// Package window adapts Berth's desktop services (app/desktop) and tray
// (app/tray) to the Wails runtime: events to the page and the tray, URLs and
// folder dialogs, tray clicks, and WebKitGTK's set-up on Linux. Only the
// desktop binary (the repository root's main.go) imports it.
package window

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

// Glue adapts the services to Wails: events to runtime.EventsEmit (and to
// the tray), URLs and folder dialogs to the runtime, tray clicks to the
// services.
type Glue struct {
	log     *slog.Logger
	backend *desktop.Backend
	tray    *tray.Tray

	mu  sync.Mutex
	ctx context.Context // the Wails runtime context, set at startup
}

// New makes the glue; Attach gives it the services once they exist (they
// need the glue as their Emitter and UI).
func New(log *slog.Logger) *Glue { return &Glue{log: log} }

// Attach connects the services and the tray.
func (g *Glue) Attach(backend *desktop.Backend, t *tray.Tray) { g.backend, g.tray = backend, t }

// SetContext hands over the Wails runtime context (OnStartup).
func (g *Glue) SetContext(ctx context.Context) {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
}

func (g *Glue) runtimeContext() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctx
}

// Emit implements desktop.Emitter.
func (g *Glue) Emit(name string, data any) {
	g.tray.Emit(name, data)
	if ctx := g.runtimeContext(); ctx != nil {
		runtime.EventsEmit(ctx, name, data)
	}
}

// OpenURL implements desktop.UI.
func (g *Glue) OpenURL(u string) error {
	if ctx := g.runtimeContext(); ctx != nil {
		runtime.BrowserOpenURL(ctx, u)
	}
	return nil
}

// PickFolder implements desktop.UI.
func (g *Glue) PickFolder(title string) (string, error) {
	ctx := g.runtimeContext()
	if ctx == nil {
		return "", nil
	}
	return runtime.OpenDirectoryDialog(ctx, runtime.OpenDialogOptions{Title: title})
}

// Do implements tray.Actions.
func (g *Glue) Do(a tray.Action) {
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
		if ctx := g.runtimeContext(); ctx != nil {
			runtime.WindowShow(ctx)
			runtime.WindowUnminimise(ctx)
		}
	case "quit":
		g.quit(m)
	}
	if err != nil {
		g.log.Warn("tray action", "action", a.Kind, "err", err)
		if ctx := g.runtimeContext(); ctx != nil {
			runtime.MessageDialog(ctx, runtime.MessageDialogOptions{Type: runtime.ErrorDialog, Title: "Berth", Message: err.Error()})
		}
	}
}

func (g *Glue) containerAction(a tray.Action) error {
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
func (g *Glue) quit(m *desktop.Machine) {
	ctx := g.runtimeContext()
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

// Ready records the first paint (the frontend calls it through main's App):
// the figure goes to the log and, for `make bench`, to
// $BERTH_DESKTOP_READY_FILE; then freed start-up memory goes back.
func (g *Glue) Ready() {
	ms := time.Since(processStart).Milliseconds()
	g.log.Info("window ready", "ms", ms)
	if p := os.Getenv("BERTH_DESKTOP_READY_FILE"); p != "" {
		// A marker for the benchmark, not state: rename without fsync.
		if os.WriteFile(p+".tmp", []byte(strconv.FormatInt(ms, 10)+"\n"), 0o644) == nil {
			os.Rename(p+".tmp", p)
		}
	}
	trimMemory()
}
