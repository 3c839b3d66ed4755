// Package config holds Berth's user settings (VM size, driver, shared
// folders, registries…) and the paths under BERTH_HOME (~/.berth). The CLI,
// the host agent and the desktop app read and write the same file through
// this package, so validation rules live in one place.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// Settings are the user's choices. Zero values mean "default" only when
// read from an old file; Load always returns complete settings.
type Settings struct {
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memoryMiB"`
	DiskGiB   int    `json:"diskGiB"`
	Driver    string `json:"driver"` // "qemu", "vz", "wsl", "native"; "" = the platform default
	// SharedFolders are host folders visible in the VM at the same path.
	SharedFolders      []string `json:"sharedFolders"`
	StartAtLogin       bool     `json:"startAtLogin"`
	InsecureRegistries []string `json:"insecureRegistries"`
	RegistryMirrors    []string `json:"registryMirrors"`
	// ContainerLogMiB bounds each container's json-file log on the VM's
	// disk: it is rotated at this size and one older file is kept (the
	// engine's --log-opt max-size and max-file; a container's own
	// --log-opt wins).
	ContainerLogMiB int `json:"containerLogMiB"`
	// HTTPProxy, HTTPSProxy and NoProxy are the engine's proxy: for pulls,
	// pushes, logins and builds (which also get them as the predefined
	// proxy build args). Defaults: the host's environment, as Docker
	// Desktop takes them.
	HTTPProxy  string `json:"httpProxy"`
	HTTPSProxy string `json:"httpsProxy"`
	NoProxy    string `json:"noProxy"` // comma-separated hosts, domains, CIDRs
}

// Bounds of ContainerLogMiB.
const (
	DefaultContainerLogMiB = 20
	MaxContainerLogMiB     = 10240
)

// Defaults returns the settings a new install starts with: half the host's
// CPUs (at least 1, at most 4), 2 GiB of memory, a 64 GiB sparse disk, the
// user's home folder shared.
func Defaults() Settings {
	cpus := runtime.NumCPU() / 2
	if cpus < 1 {
		cpus = 1
	}
	if cpus > 4 {
		cpus = 4
	}
	home, _ := os.UserHomeDir()
	var shares []string
	if home != "" {
		shares = []string{home}
	}
	return Settings{CPUs: cpus, MemoryMiB: 2048, DiskGiB: 64, SharedFolders: shares, ContainerLogMiB: DefaultContainerLogMiB,
		HTTPProxy: envProxy("HTTP_PROXY"), HTTPSProxy: envProxy("HTTPS_PROXY"), NoProxy: envProxy("NO_PROXY")}
}

// envProxy reads a proxy variable of the host as Go's tools do: upper
// case, else lower case.
func envProxy(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv(strings.ToLower(name))
}

// checkProxy accepts an http(s) proxy URL with a host and no credentials:
// the engine's flags travel on the VM's kernel command line, which
// containers can read, so a password must not go there.
func checkProxy(p string) error {
	u, err := url.Parse(p)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want http(s)://host[:port]")
	}
	if u.User != nil {
		return errors.New("proxies that need a user name and password are not supported yet")
	}
	if strings.ContainsAny(p, ", \t\"") || (u.Path != "" && u.Path != "/") {
		return errors.New("want http(s)://host[:port], without a path, commas or spaces")
	}
	return nil
}

// NoProxyList splits NoProxy into its entries.
func (s Settings) NoProxyList() []string {
	var out []string
	for _, e := range strings.Split(s.NoProxy, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Limits bound what Validate accepts; Host() reads them from this machine.
type Limits struct {
	MaxCPUs      int      `json:"maxCPUs"`
	MaxMemoryMiB int      `json:"maxMemoryMiB"`
	Drivers      []string `json:"drivers"` // drivers available on this platform
}

// Validation errors name the field and say what is allowed.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError lists every problem found, so a form can show them all.
type ValidationError []*FieldError

func (v ValidationError) Error() string {
	var parts []string
	for _, e := range v {
		parts = append(parts, e.Error())
	}
	return "invalid settings: " + strings.Join(parts, "; ")
}

// Validate checks s against lim and returns a ValidationError, or nil.
func (s Settings) Validate(lim Limits) error {
	var errs ValidationError
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if s.CPUs < 1 || (lim.MaxCPUs > 0 && s.CPUs > lim.MaxCPUs) {
		add("cpus", "must be between 1 and %d", lim.MaxCPUs)
	}
	if s.MemoryMiB < 512 || (lim.MaxMemoryMiB > 0 && s.MemoryMiB > lim.MaxMemoryMiB) {
		add("memoryMiB", "must be between 512 and %d MiB", lim.MaxMemoryMiB)
	}
	if s.DiskGiB < 8 || s.DiskGiB > 2048 {
		add("diskGiB", "must be between 8 and 2048 GiB")
	}
	if s.ContainerLogMiB < 1 || s.ContainerLogMiB > MaxContainerLogMiB {
		add("containerLogMiB", "must be between 1 and %d MiB", MaxContainerLogMiB)
	}
	if s.Driver != "" && len(lim.Drivers) > 0 && !contains(lim.Drivers, s.Driver) {
		add("driver", "%q is not available here (choose one of %s)", s.Driver, strings.Join(lim.Drivers, ", "))
	}
	for _, f := range s.SharedFolders {
		if !filepath.IsAbs(f) {
			add("sharedFolders", "%q is not an absolute path", f)
			continue
		}
		if fi, err := os.Stat(f); err != nil || !fi.IsDir() {
			add("sharedFolders", "%q is not an existing folder", f)
		}
	}
	for _, r := range s.InsecureRegistries {
		if err := checkRegistryHost(r); err != nil {
			add("insecureRegistries", "%q: %v", r, err)
		}
	}
	for _, m := range s.RegistryMirrors {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("registryMirrors", "%q is not an http(s) URL", m)
		}
	}
	for field, p := range map[string]string{"httpProxy": s.HTTPProxy, "httpsProxy": s.HTTPSProxy} {
		if p == "" {
			continue
		}
		if err := checkProxy(p); err != nil {
			add(field, "%q: %v", p, err)
		}
	}
	for _, e := range s.NoProxyList() {
		if strings.ContainsAny(e, " \t\"") {
			add("noProxy", "%q: want a host, a domain (.example.com), an IP or a CIDR", e)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// checkRegistryHost accepts host, host:port, IP, IP:port and CIDR forms, as
// dockerd's --insecure-registry does.
func checkRegistryHost(r string) error {
	if r == "" || strings.Contains(r, "://") || strings.Contains(r, " ") {
		return errors.New("want host[:port] or a CIDR, without a scheme")
	}
	if _, _, err := net.ParseCIDR(r); err == nil {
		return nil
	}
	host, port, err := net.SplitHostPort(r)
	if err != nil {
		host, port = r, ""
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("bad port")
		}
	}
	if host == "" || strings.ContainsAny(host, "/@?#") {
		return errors.New("want host[:port] or a CIDR, without a scheme")
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Load reads the settings file, filling defaults for anything unset. A
// missing file gives the defaults; a corrupt one is an error (never
// silently replaced: the user may want to fix it).
func Load(p Paths) (Settings, error) {
	s := Defaults()
	b, err := os.ReadFile(p.ConfigFile())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Defaults(), fmt.Errorf("settings file %s is corrupt: %v", p.ConfigFile(), err)
	}
	d := Defaults()
	if s.CPUs == 0 {
		s.CPUs = d.CPUs
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = d.MemoryMiB
	}
	if s.DiskGiB == 0 {
		s.DiskGiB = d.DiskGiB
	}
	if s.ContainerLogMiB == 0 {
		s.ContainerLogMiB = d.ContainerLogMiB
	}
	return s, nil
}

// Save validates s and writes it atomically.
func Save(p Paths, s Settings, lim Limits) error {
	if err := s.Validate(lim); err != nil {
		return err
	}
	if err := os.MkdirAll(p.Home, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(p.ConfigFile(), append(b, '\n'), 0o600)
}
