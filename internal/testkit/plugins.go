package testkit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// The docker CLI plugins as Docker's packages, Homebrew and Docker Desktop
// install them. They are built from their Go modules at these versions,
// once per machine, into PluginCache (outside any clone, keyed by version).
const (
	BuildxModule   = "github.com/docker/buildx"
	BuildxVersion  = "v0.38.2"
	ComposeModule  = "github.com/docker/compose/v2"
	ComposeVersion = "v2.40.3"
	// ComposeToolchain is the Go toolchain compose's go.mod needs.
	ComposeToolchain = "go1.27.3"
)

// PluginCache is where built plugins are kept between runs
// ($BERTH_PLUGIN_CACHE, else /var/cache/berth).
var PluginCache = func() string {
	if d := os.Getenv("BERTH_PLUGIN_CACHE"); d != "" {
		return d
	}
	return "/var/cache/berth"
}()

var pluginMu sync.Mutex

// BuildxPlugin returns the path of docker-buildx, building it on first use.
func BuildxPlugin(t T) string {
	t.Helper()
	return plugin(t, "docker-buildx", BuildxVersion, func(dir, out string) *exec.Cmd {
		script := fmt.Sprintf(`set -e
GOBIN=%[1]s %[2]s install -trimpath -ldflags "-s -w -X %[3]s/version.Version=%[4]s" %[3]s/cmd/buildx@%[4]s
mv %[1]s/buildx %[5]s
`, dir, goBinary(), BuildxModule, BuildxVersion, out)
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on", "CGO_ENABLED=0")
		return cmd
	})
}

// ComposePlugin returns the path of docker-compose, building it on first
// use. Compose's go.mod has exclude directives, which `go build pkg@version`
// refuses, so it is built inside a copy of the module's own directory, with
// the toolchain its go.mod needs.
func ComposePlugin(t T) string {
	t.Helper()
	return plugin(t, "docker-compose", ComposeVersion, func(dir, out string) *exec.Cmd {
		script := fmt.Sprintf(`set -e
src=$(%[1]s mod download -json %[2]s@%[3]s | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
test -n "$src"
cp -r "$src" %[4]s/src && chmod -R u+w %[4]s/src && cd %[4]s/src
GOTOOLCHAIN=%[5]s GOFLAGS=-mod=mod CGO_ENABLED=0 %[1]s build -trimpath -ldflags "-s -w -X %[2]s/internal.Version=%[3]s" -o %[6]s ./cmd
`, goBinary(), ComposeModule, ComposeVersion, dir, ComposeToolchain, out)
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
		return cmd
	})
}

// plugin builds name@version with build (given a scratch directory and the
// output path) unless PluginCache has it. A file lock keeps test binaries
// running in parallel from building it twice.
func plugin(t T, name, version string, build func(dir, out string) *exec.Cmd) string {
	t.Helper()
	pluginMu.Lock()
	defer pluginMu.Unlock()
	dir := filepath.Join(PluginCache, strings.TrimPrefix(name, "docker-")+"-"+version)
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("plugin cache: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("plugin cache: %v", err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		t.Fatalf("plugin cache: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		return out // built by another process meanwhile
	}
	scratch, err := os.MkdirTemp("", "berth-plugin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(scratch)
	tmp := out + ".tmp"
	cmd := build(scratch, tmp)
	if cmd.Dir == "" {
		cmd.Dir = scratch
	}
	t.Logf("building %s %s into %s (once per machine)", name, version, dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s %s: %v\n%s", name, version, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// goBinary is the go command of this machine (PATH may lack it in tests).
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
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
