// Package tray is Berth's tray menu (fyne.io/systray): the machine's state
// as the icon, Start/Stop/Restart, the running containers with stop,
// restart and their published ports, Open Berth and Quit. The menu is built
// as plain data (Build) from what the desktop services publish, then
// rendered, so its content is tested without a tray.
package tray

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// Item is one menu entry; Action is what a click does ("" for labels).
type Item struct {
	Title    string
	Action   Action
	Disabled bool
	Children []Item
	// Separator draws a line instead of an entry.
	Separator bool
}

// Action is a click's meaning, handed to Actions.Do.
type Action struct {
	Kind      string // start, stop, restart, container, open-port, show, quit
	Container string // container ID, for container and open-port
	Op        string // stop, restart (container actions)
	Port      int    // host port (open-port)
}

// Actions carries clicks out (the desktop glue implements it).
type Actions interface {
	Do(a Action)
}

// Build returns the menu for a machine status and container list.
func Build(ms desktop.MachineStatus, containers []desktop.Container) []Item {
	st := ms.Status.State
	label := "Berth is " + string(st)
	if st == hostapi.Error && ms.Status.Error != "" {
		label = "Berth: " + firstLine(ms.Status.Error)
	}
	if st == hostapi.Running && ms.Engine.Version != "" {
		label += " (engine " + ms.Engine.Version + ")"
	}
	items := []Item{
		{Title: label, Disabled: true},
		{Separator: true},
		{Title: "Start", Action: Action{Kind: "start"}, Disabled: st == hostapi.Running || st == hostapi.Starting || st == hostapi.Stopping},
		{Title: "Stop", Action: Action{Kind: "stop"}, Disabled: st != hostapi.Running || ms.External},
		{Title: "Restart", Action: Action{Kind: "restart"}, Disabled: st != hostapi.Running || ms.External},
		{Separator: true},
	}
	var running []desktop.Container
	for _, c := range containers {
		if c.State == "running" {
			running = append(running, c)
		}
	}
	if len(running) == 0 {
		items = append(items, Item{Title: "No running containers", Disabled: true})
	} else {
		group := Item{Title: fmt.Sprintf("Containers (%d running)", len(running))}
		for _, c := range running {
			ci := Item{Title: c.Name + " — " + c.Image}
			ci.Children = append(ci.Children,
				Item{Title: "Stop", Action: Action{Kind: "container", Container: c.ID, Op: "stop"}},
				Item{Title: "Restart", Action: Action{Kind: "container", Container: c.ID, Op: "restart"}})
			for _, p := range c.Ports {
				if p.URL != "" {
					ci.Children = append(ci.Children, Item{Title: fmt.Sprintf("Open %s (port %d)", p.URL, p.ContainerPort),
						Action: Action{Kind: "open-port", Container: c.ID, Port: p.HostPort}})
				}
			}
			group.Children = append(group.Children, ci)
		}
		items = append(items, group)
	}
	return append(items,
		Item{Separator: true},
		Item{Title: "Open Berth", Action: Action{Kind: "show"}},
		Item{Title: "Quit Berth", Action: Action{Kind: "quit"}})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "…"
	}
	return s
}
