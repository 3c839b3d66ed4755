package testkit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/berth-dev/berth/installer/dockercli"
)

// The docker CLI plugins as Docker's packages, Homebrew and Docker Desktop
// install them, built from their Go modules at the versions the installers
// ship (installer/dockercli), once per machine, into PluginCache.
const (
	BuildxVersion  = dockercli.BuildxVersion
	ComposeVersion = dockercli.ComposeVersion
)

// PluginCache is where built plugins are kept between runs
// ($BERTH_PLUGIN_CACHE, else /var/cache/berth).
var PluginCache = dockercli.DefaultCache()

var pluginMu sync.Mutex

// BuildxPlugin returns the path of docker-buildx, building it on first use.
func BuildxPlugin(t T) string {
	t.Helper()
	return plugin(t, "docker-buildx")
}

// ComposePlugin returns the path of docker-compose, building it on first
// use.
func ComposePlugin(t T) string {
	t.Helper()
	return plugin(t, "docker-compose")
}

func plugin(t T, name string) string {
	t.Helper()
	pluginMu.Lock()
	defer pluginMu.Unlock()
	tool, err := dockercli.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tool.Build(PluginCache, runtime.GOOS, runtime.GOARCH, t.Logf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// InstallPlugins puts the named plugins ("buildx", "compose") into a docker
// config directory's cli-plugins, as Docker's packages install them.
func InstallPlugins(t T, configDir string, names ...string) {
	t.Helper()
	dir := filepath.Join(configDir, "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		var src string
		switch n {
		case "buildx":
			src = BuildxPlugin(t)
		case "compose":
			src = ComposePlugin(t)
		default:
			t.Fatalf("unknown docker CLI plugin %q", n)
		}
		if err := os.Symlink(src, filepath.Join(dir, "docker-"+n)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	// The docker CLI reads config.json; an empty one is what a fresh
	// install has.
	if _, err := os.Stat(filepath.Join(configDir, "config.json")); os.IsNotExist(err) {
		b, _ := json.Marshal(map[string]any{})
		os.WriteFile(filepath.Join(configDir, "config.json"), b, 0o600)
	}
}
