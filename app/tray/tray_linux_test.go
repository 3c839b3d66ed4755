package tray

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/berth-dev/berth/app/desktop"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

type actionsFunc func(Action)

func (f actionsFunc) Do(a Action) { f(a) }

// menuItem is one entry of the exported com.canonical.dbusmenu layout.
type menuItem struct {
	id    int32
	label string
	kids  []menuItem
}

func parseLayout(v []any) menuItem {
	it := menuItem{id: v[0].(int32)}
	if l, ok := v[1].(map[string]dbus.Variant)["label"]; ok {
		it.label, _ = l.Value().(string)
	}
	for _, c := range v[2].([]dbus.Variant) {
		it.kids = append(it.kids, parseLayout(c.Value().([]any)))
	}
	return it
}

func (m menuItem) find(label string) *menuItem {
	if strings.HasPrefix(m.label, label) {
		return &m
	}
	for _, k := range m.kids {
		if f := k.find(label); f != nil {
			return f
		}
	}
	return nil
}

// TestTrayOverDBus runs the tray against a real session bus and reads its
// menu the way a panel does (StatusNotifierItem + dbusmenu), then clicks.
func TestTrayOverDBus(t *testing.T) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("needs dbus-daemon")
	}
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	out, _ := bus.StdoutPipe()
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bus.Process.Kill(); bus.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", strings.TrimSpace(addr))

	clicks := make(chan Action, 4)
	tr := New(actionsFunc(func(a Action) { clicks <- a }), nil)
	end, ok := tr.Start()
	defer end()
	if !ok {
		t.Fatal("no tray on a running session bus")
	}
	tr.Emit(desktop.EventMachine, desktop.MachineStatus{Hostd: true, Status: hostapi.Status{State: hostapi.Running}, Engine: desktop.EngineInfo{Version: "1.2"}})
	tr.Emit(desktop.EventContainers, []desktop.Container{{ID: "c1", Name: "web", Image: "nginx", State: "running",
		Ports: []desktop.Port{{Proto: "tcp", ContainerPort: 80, HostPort: 8080, URL: "http://localhost:8080"}}}})

	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	obj := conn.Object(fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", os.Getpid()), "/StatusNotifierItem/menu")
	var root menuItem
	deadline := time.Now().Add(10 * time.Second)
	for {
		var rev uint32
		var layout []any
		call := obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err == nil && call.Store(&rev, &layout) == nil {
			root = parseLayout(layout)
			if root.find("Berth is running (engine 1.2)") != nil && root.find("web — nginx") != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tray menu never showed the running machine and container: %+v (%v)", root, call.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	web := root.find("web — nginx")
	stop := web.find("Stop")
	if stop == nil || web.find("Open http://localhost:8080") == nil {
		t.Fatalf("container submenu %+v", web)
	}
	if call := obj.Call("com.canonical.dbusmenu.Event", 0, stop.id, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatal(call.Err)
	}
	select {
	case a := <-clicks:
		if a != (Action{Kind: "container", Container: "c1", Op: "stop"}) {
			t.Fatalf("click gave %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("clicking Stop did nothing")
	}
}
