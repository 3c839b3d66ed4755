package hostagent

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/vm/driver"
)

// TestEngineArgsFromSettings: registry mirrors and the proxy reach the
// engine as its flags, in a form the kernel command line can carry (no
// commas: one --no-proxy per entry).
func TestEngineArgsFromSettings(t *testing.T) {
	a := &Agent{paths: config.Paths{Home: t.TempDir()}, log: slog.Default()}
	s := config.Defaults()
	s.SharedFolders = nil
	s.RegistryMirrors = []string{"https://mirror.example", "http://10.0.0.5:5000"}
	s.HTTPProxy, s.HTTPSProxy, s.NoProxy = "http://proxy:3128", "http://proxy:3129", "localhost,.corp"
	m, err := a.machine(s)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(m.EngineArgs, " ")
	for _, want := range []string{"--registry-mirror=https://mirror.example --registry-mirror=http://10.0.0.5:5000",
		"--http-proxy=http://proxy:3128", "--https-proxy=http://proxy:3129", "--no-proxy=localhost --no-proxy=.corp"} {
		if !strings.Contains(got, want) {
			t.Errorf("engine args %q lack %q", got, want)
		}
	}
	if _, err := driver.GuestParams(m, ""); err != nil {
		t.Errorf("the kernel command line cannot carry them: %v", err)
	}
}
