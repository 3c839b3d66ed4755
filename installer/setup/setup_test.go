package setup

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/app/config"
)

func TestPathList(t *testing.T) {
	fold := strings.EqualFold
	exact := func(a, b string) bool { return a == b }
	if got, ch := pathListAdd(`C:\Windows;C:\Tools`, `C:\Berth\bin`, ";", fold); !ch || got != `C:\Berth\bin;C:\Windows;C:\Tools` {
		t.Errorf("add: %q %v", got, ch)
	}
	if got, ch := pathListAdd(`c:\berth\bin;C:\Windows`, `C:\Berth\bin`, ";", fold); ch || got != `c:\berth\bin;C:\Windows` {
		t.Errorf("add again: %q %v", got, ch)
	}
	if got, ch := pathListAdd("", "/opt/berth", ":", exact); !ch || got != "/opt/berth" {
		t.Errorf("add to empty: %q %v", got, ch)
	}
	if got, ch := pathListRemove(`C:\Windows;C:\BERTH\bin;C:\Tools`, `C:\Berth\bin`, ";", fold); !ch || got != `C:\Windows;C:\Tools` {
		t.Errorf("remove: %q %v", got, ch)
	}
	if _, ch := pathListRemove("/usr/bin", "/opt/berth", ":", exact); ch {
		t.Error("removed what was not there")
	}
}

func TestLoginItems(t *testing.T) {
	exe := "/Applications/Berth & Co <x>.app/Contents/MacOS/berth-desktop"
	var plist struct {
		Dict struct {
			Keys    []string `xml:"key"`
			Strings []string `xml:"string"`
			Array   struct {
				Strings []string `xml:"string"`
			} `xml:"array"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(launchAgent(exe), &plist); err != nil {
		t.Fatalf("LaunchAgent is not valid XML: %v", err)
	}
	if a := plist.Dict.Array.Strings; len(a) != 2 || a[0] != exe || a[1] != LoginArg {
		t.Errorf("ProgramArguments %q", a)
	}
	if plist.Dict.Strings[0] != launchAgentLabel {
		t.Errorf("label %q", plist.Dict.Strings[0])
	}
	entry := string(autostartEntry(`/opt/my "berth"/berth-desktop`))
	if !strings.Contains(entry, `Exec="/opt/my \"berth\"/berth-desktop" --hidden`+"\n") {
		t.Errorf("autostart Exec quoting:\n%s", entry)
	}
	if v := runValue(`C:\Program Files\Berth\bin\berth-desktop.exe`); v != `"C:\Program Files\Berth\bin\berth-desktop.exe" --hidden` {
		t.Errorf("Run value %q", v)
	}
}

func TestStartAtLoginLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG autostart is Linux's")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if err := StartAtLogin("/usr/bin/berth-desktop", true); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", "berth.desktop")
	if b, err := os.ReadFile(p); err != nil || !strings.Contains(string(b), `Exec="/usr/bin/berth-desktop" --hidden`) {
		t.Fatalf("entry %q %v", b, err)
	}
	if err := StartAtLogin("/usr/bin/berth-desktop", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("entry left after turning it off")
	}
	if err := StartAtLogin("/usr/bin/berth-desktop", false); err != nil {
		t.Fatalf("off twice: %v", err)
	}
}

func TestDockerContext(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	p := config.Paths{Home: filepath.Join(t.TempDir(), "berth-home")}
	if err := DockerContext(p, false); err != nil {
		t.Fatal(err)
	}
	metas, _ := filepath.Glob(filepath.Join(os.Getenv("DOCKER_CONFIG"), "contexts", "meta", "*", "meta.json"))
	if len(metas) != 1 {
		t.Fatalf("context metadata: %v", metas)
	}
	var meta struct {
		Name      string
		Endpoints map[string]struct{ Host string }
	}
	b, _ := os.ReadFile(metas[0])
	if err := json.Unmarshal(b, &meta); err != nil || meta.Endpoints["docker"].Host != p.DockerHost() {
		t.Fatalf("meta %s: %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")); err == nil {
		if b, _ := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")); strings.Contains(string(b), "currentContext") {
			t.Errorf("the current context was changed: %s", b)
		}
	}
	if err := DockerContext(p, true); err != nil {
		t.Fatal(err)
	}
	if metas, _ := filepath.Glob(filepath.Join(os.Getenv("DOCKER_CONFIG"), "contexts", "meta", "*", "meta.json")); len(metas) != 0 {
		t.Fatalf("context left after remove: %v", metas)
	}
}
