package tray

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

func find(items []Item, title string) *Item {
	for i := range items {
		if strings.HasPrefix(items[i].Title, title) {
			return &items[i]
		}
		if f := find(items[i].Children, title); f != nil {
			return f
		}
	}
	return nil
}

func TestMenuStopped(t *testing.T) {
	items := Build(desktop.MachineStatus{Status: hostapi.Status{State: hostapi.Stopped}}, nil)
	if items[0].Title != "Berth is stopped" || find(items, "Start").Disabled || !find(items, "Stop").Disabled ||
		find(items, "No running containers") == nil || find(items, "Quit Berth").Action.Kind != "quit" {
		t.Fatalf("%+v", items)
	}
}

func TestMenuRunningContainers(t *testing.T) {
	ms := desktop.MachineStatus{Hostd: true, Status: hostapi.Status{State: hostapi.Running}, Engine: desktop.EngineInfo{Version: "1.2"}}
	cs := []desktop.Container{
		{ID: "a1", Name: "web", Image: "nginx", State: "running", Ports: []desktop.Port{{Proto: "tcp", ContainerPort: 80, HostPort: 8080, URL: "http://localhost:8080"}, {Proto: "udp", ContainerPort: 53, HostPort: 53}}},
		{ID: "b2", Name: "old", Image: "busybox", State: "exited"},
	}
	items := Build(ms, cs)
	if items[0].Title != "Berth is running (engine 1.2)" || !find(items, "Start").Disabled || find(items, "Stop").Disabled {
		t.Fatalf("%+v", items[:5])
	}
	group := find(items, "Containers (1 running)")
	if group == nil || len(group.Children) != 1 || group.Children[0].Title != "web — nginx" {
		t.Fatalf("group %+v", group)
	}
	web := group.Children[0].Children
	if len(web) != 3 || web[0].Action != (Action{Kind: "container", Container: "a1", Op: "stop"}) ||
		web[2].Action != (Action{Kind: "open-port", Container: "a1", Port: 8080}) {
		t.Fatalf("web menu %+v", web)
	}
	// An engine hostd does not manage cannot be stopped from the tray.
	ms.External, ms.Hostd = true, false
	if !find(Build(ms, cs), "Stop").Disabled {
		t.Fatal("stop enabled for an external engine")
	}
}

func TestIcons(t *testing.T) {
	for _, s := range []hostapi.State{hostapi.Running, hostapi.Stopped, hostapi.Error, "unknown"} {
		img, err := png.Decode(bytes.NewReader(Icon(s)))
		if err != nil || img.Bounds().Dx() != 32 {
			t.Fatalf("icon %s: %v", s, err)
		}
	}
	if bytes.Equal(Icon(hostapi.Running), Icon(hostapi.Error)) {
		t.Fatal("running and error icons are the same")
	}
}
