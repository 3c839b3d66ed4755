// Package dockercli builds the docker CLI and its buildx and compose
// plugins from their Go modules at pinned versions, for any GOOS/GOARCH,
// once per machine into a cache: the installers ship them (a `docker`
// command out of the box) and the tests drive them.
package dockercli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// The pinned versions. The docker CLI is v29.9.2: v29.9.3 and v29.10.0
// pin github.com/moby/swarmkit/v2 v2.1.3 in their vendor.mod, which the
// module proxy refuses; v29.9.2 pins v2.1.2, which it serves.
const (
	CLIModule      = "github.com/docker/cli"
	CLIVersion     = "v29.9.2"
	BuildxModule   = "github.com/docker/buildx"
	BuildxVersion  = "v0.38.2"
	ComposeModule  = "github.com/docker/compose/v2"
	ComposeVersion = "v2.40.3"
	// ComposeToolchain is the Go toolchain compose's go.mod needs.
	ComposeToolchain = "go1.27.3"
)

// Tool is one of the three programs.
type Tool struct {
	Name    string // docker, docker-buildx, docker-compose
	Version string
	script  func(goBin, scratch, out string) string
}

// Tools are what the installers ship, the CLI first.
var Tools = []Tool{
	{Name: "docker", Version: CLIVersion, script: func(goBin, scratch, out string) string {
		// The module has no go.mod (+incompatible): its vendor.mod is the
		// real one, and the zip carries no vendored code.
		return fmt.Sprintf(`set -e
src=$(%[1]s mod download -json %[2]s@%[3]s+incompatible | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
test -n "$src"
cp -r "$src" %[4]s/src && chmod -R u+w %[4]s/src && cd %[4]s/src
rm -rf vendor && mv vendor.mod go.mod && mv vendor.sum go.sum
GOFLAGS=-mod=mod CGO_ENABLED=0 %[1]s build -trimpath -ldflags "-s -w -X %[2]s/cli/version.Version=%[5]s -X %[2]s/cli/version.PlatformName=Berth" -o %[6]s ./cmd/docker
`, goBin, CLIModule, CLIVersion, scratch, strings.TrimPrefix(CLIVersion, "v"), out)
	}},
	{Name: "docker-buildx", Version: BuildxVersion, script: func(goBin, scratch, out string) string {
		return fmt.Sprintf(`set -e
mkdir -p %[1]s/m && cd %[1]s/m && %[2]s mod init berth.local/buildx >/dev/null 2>&1
GOFLAGS=-mod=mod CGO_ENABLED=0 %[2]s get %[3]s@%[4]s >/dev/null
GOFLAGS=-mod=mod CGO_ENABLED=0 %[2]s build -trimpath -ldflags "-s -w -X %[3]s/version.Version=%[4]s" -o %[5]s %[3]s/cmd/buildx
`, scratch, goBin, BuildxModule, BuildxVersion, out)
	}},
	{Name: "docker-compose", Version: ComposeVersion, script: func(goBin, scratch, out string) string {
		// Compose's go.mod has exclude directives, which `go build
		// pkg@version` refuses: it is built inside a copy of the module.
		return fmt.Sprintf(`set -e
src=$(%[1]s mod download -json %[2]s@%[3]s | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
test -n "$src"
cp -r "$src" %[4]s/src && chmod -R u+w %[4]s/src && cd %[4]s/src
GOTOOLCHAIN=%[5]s GOFLAGS=-mod=mod CGO_ENABLED=0 %[1]s build -trimpath -ldflags "-s -w -X %[2]s/internal.Version=%[3]s" -o %[6]s ./cmd
`, goBin, ComposeModule, ComposeVersion, scratch, ComposeToolchain, out)
	}},
}

// Lookup returns the tool named name.
func Lookup(name string) (Tool, error) {
	for _, t := range Tools {
		if t.Name == name {
			return t, nil
		}
	}
	return Tool{}, fmt.Errorf("no docker tool %q", name)
}

// DefaultCache is where built tools are kept between runs
// ($BERTH_PLUGIN_CACHE, else /var/cache/berth).
func DefaultCache() string {
	if d := os.Getenv("BERTH_PLUGIN_CACHE"); d != "" {
		return d
	}
	return "/var/cache/berth"
}

// Build returns the path of t built for goos/goarch, building it into
// cache unless it is there (a file lock keeps processes running in
// parallel from building it twice). logf reports a build.
func (t Tool) Build(cache, goos, goarch string, logf func(string, ...any)) (string, error) {
	short := strings.TrimPrefix(t.Name, "docker-")
	dir := filepath.Join(cache, short+"-"+t.Version)
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		dir += "-" + goos + "-" + goarch
	}
	exe := t.Name
	if goos == "windows" {
		exe += ".exe"
	}
	out := filepath.Join(dir, exe)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", err
	}
	if _, err := os.Stat(out); err == nil {
		return out, nil // built by another process meanwhile
	}
	scratch, err := os.MkdirTemp("", "berth-"+short+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	tmp := out + ".tmp"
	cmd := exec.Command("sh", "-c", t.script(goBinary(), scratch, tmp))
	cmd.Dir = scratch
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on", "GOOS="+goos, "GOARCH="+goarch)
	if logf != nil {
		logf("building %s %s for %s/%s into %s (once per machine)", t.Name, t.Version, goos, goarch, dir)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s %s: %v\n%s", t.Name, t.Version, err, b)
	}
	return out, os.Rename(tmp, out)
}

// BuildAll builds every tool for goos/goarch into dir as the installers lay
// them out: dir/docker and dir/cli-plugins/docker-{buildx,compose}.
func BuildAll(cache, goos, goarch, dir string, logf func(string, ...any)) error {
	for _, t := range Tools {
		p, err := t.Build(cache, goos, goarch, logf)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.Base(p))
		if t.Name != "docker" {
			dst = filepath.Join(dir, "cli-plugins", filepath.Base(p))
		}
		if err := copyFile(p, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// goBinary is the go command of this machine (PATH may lack it in tests).
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}
