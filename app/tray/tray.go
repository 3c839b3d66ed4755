package tray

import (
	"log/slog"
	"reflect"
	"runtime"
	"sync"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"

	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// Tray keeps the system tray menu in step with the machine and the
// running containers. It is a desktop.Emitter: the glue forwards the
// services' events to it.
type Tray struct {
	actions Actions
	log     *slog.Logger

	mu         sync.Mutex
	ready      bool
	machine    desktop.MachineStatus
	containers []desktop.Container
	shown      []Item // the menu on screen, to skip redundant rebuilds
}

// New returns a tray that sends clicks to actions.
func New(actions Actions, log *slog.Logger) *Tray {
	if log == nil {
		log = slog.Default()
	}
	return &Tray{actions: actions, log: log, machine: desktop.MachineStatus{Status: hostapi.Status{State: hostapi.Stopped}}}
}

// Start registers the tray with the platform's loop; call it on the main
// thread before wails.Run (macOS requires it). The returned function
// removes the tray at exit.
// Without a session bus (a bare X server, CI) there is no tray to show:
// ok is false and the window runs alone.
func (t *Tray) Start() (end func(), ok bool) {
	if runtime.GOOS == "linux" {
		if _, err := dbus.SessionBus(); err != nil {
			t.log.Warn("no tray icon: no D-Bus session bus", "err", err)
			return func() {}, false
		}
	}
	start, end := systray.RunWithExternalLoop(t.onReady, nil)
	start()
	return end, true
}

func (t *Tray) onReady() {
	systray.SetTitle("Berth")
	systray.SetTooltip("Berth")
	t.mu.Lock()
	t.ready = true
	t.mu.Unlock()
	t.render()
}

// Emit takes the events the tray shows: the machine and the containers.
func (t *Tray) Emit(name string, data any) {
	t.mu.Lock()
	switch name {
	case desktop.EventMachine:
		ms, ok := data.(desktop.MachineStatus)
		if !ok {
			t.mu.Unlock()
			return
		}
		t.machine = ms
	case desktop.EventContainers:
		cs, _ := data.([]desktop.Container)
		t.containers = cs
	default:
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.render()
}

// render rebuilds the menu when its content changed.
func (t *Tray) render() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ready {
		return
	}
	items := Build(t.machine, t.containers)
	if reflect.DeepEqual(items, t.shown) {
		return
	}
	t.shown = items
	systray.SetIcon(Icon(t.machine.Status.State))
	systray.SetTooltip("Berth: " + string(t.machine.Status.State))
	systray.ResetMenu()
	for _, it := range items {
		if it.Separator {
			systray.AddSeparator()
			continue
		}
		t.add(systray.AddMenuItem(it.Title, ""), it)
	}
}

func (t *Tray) add(mi *systray.MenuItem, it Item) {
	if it.Disabled {
		mi.Disable()
	}
	for _, c := range it.Children {
		t.add(mi.AddSubMenuItem(c.Title, ""), c)
	}
	if it.Action.Kind == "" {
		return
	}
	go func() {
		for range mi.ClickedCh { // closed when the menu is reset
			t.actions.Do(it.Action)
		}
	}()
}
