//go:build linux

package engineapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	apievents "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/filters"
)

func (s *Server) systemRoutes(rt *router) {
	rt.handle(http.MethodGet, "/_ping", s.ping)
	rt.handle(http.MethodGet, "/version", s.version)
	rt.handle(http.MethodGet, "/info", s.info)
	rt.handle(http.MethodGet, "/events", s.events)
}

// ping answers GET and HEAD; the CLI reads the headers to negotiate.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	h.Set("Builder-Version", s.builderVersion())
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth Engine"},
		Version:       Version,
		GitCommit:     GitCommit,
		BuildTime:     BuildTime,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH,
				"KernelVersion": kernelVersion(), "GoVersion": runtime.Version(), "GitCommit": GitCommit, "BuildTime": BuildTime, "Experimental": "false"},
		}},
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	hostname, _ := os.Hostname()
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	info := system.Info{
		ID:                 s.eng.ID,
		Driver:             "overlay2",
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion(),
		KernelVersion:      kernelVersion(),
		OperatingSystem:    "Berth",
		OSType:             "linux",
		Architecture:       runtime.GOARCH,
		NCPU:               runtime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      s.eng.Config.Root,
		Name:               hostname,
		ServerVersion:      Version,
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		OomKillDisable:     true,
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		DefaultRuntime:     "runc",
		IndexServerAddress: "https://index.docker.io/v1/",
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {}},
		SecurityOptions:    securityOptions(),
		DriverStatus:       driverStatus(s.eng.Config.Root),
		Labels:             []string{},
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "null"}, Log: []string{"json-file"}},
		RegistryConfig:     s.registryConfig(),
		DefaultAddressPools: []system.NetworkAddressPool{
			{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16}, {Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
		},
	}
	s.fillInfo(&info)
	return writeJSON(w, http.StatusOK, infoCompat(r, &info))
}

// infoCompat adds the fields /info had in older API versions, as dockerd
// does.
func infoCompat(r *http.Request, info *system.Info) any {
	extra := map[string]any{}
	if apiBefore(r, "1.44") {
		for k, rt := range info.Runtimes {
			info.Runtimes[k] = system.RuntimeWithStatus{Runtime: rt.Runtime}
		}
	}
	if apiBefore(r, "1.46") {
		info.Containerd = nil
	}
	if apiBefore(r, "1.47") {
		extra["RegistryConfig"] = map[string]any{"AllowNondistributableArtifactsCIDRs": []string{}, "AllowNondistributableArtifactsHostnames": []string{}}
	}
	if apiBefore(r, "1.49") {
		info.FirewallBackend = nil
		extra["ContainerdCommit"] = map[string]any{"Expected": info.ContainerdCommit.ID}
		extra["RuncCommit"] = map[string]any{"Expected": info.RuncCommit.ID}
		extra["InitCommit"] = map[string]any{"Expected": info.InitCommit.ID}
	}
	if apiBefore(r, "1.50") {
		info.DiscoveredDevices = nil
		extra["BridgeNfIptables"], extra["BridgeNfIp6tables"] = false, false
	}
	if apiBefore(r, "1.53") {
		info.NRI = nil
	}
	return wrapped{base: info, extra: extra}
}

// registryConfig is /info's RegistryConfig: Docker Hub, and the registries
// reached over plain HTTP (loopback always is).
func (s *Server) registryConfig() *registry.ServiceConfig {
	rc := &registry.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		IndexConfigs:          map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Mirrors: []string{}, Secure: true, Official: true}},
		Mirrors:               []string{},
	}
	for _, h := range s.eng.Config.InsecureRegistries {
		if p, err := netip.ParsePrefix(h); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p)
			continue
		}
		rc.IndexConfigs[h] = &registry.IndexInfo{Name: h, Mirrors: []string{}}
	}
	return rc
}

// driverStatus is what /info says about the storage under the engine's
// root (overlay2, as dockerd's driver reports it).
func driverStatus(root string) [][2]string {
	fs := "unknown"
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil {
		switch st.Type {
		case unix.EXT4_SUPER_MAGIC:
			fs = "extfs"
		case unix.XFS_SUPER_MAGIC:
			fs = "xfs"
		case unix.BTRFS_SUPER_MAGIC:
			fs = "btrfs"
		case unix.TMPFS_MAGIC:
			fs = "tmpfs"
		}
	}
	return [][2]string{{"Backing Filesystem", fs}, {"Supports d_type", "true"}}
}

// securityOptions is what `docker info` lists under Security Options:
// dockerd's default seccomp profile is applied to every container that does
// not opt out (runtime/container/confine.go).
func securityOptions() []string {
	if !container.SeccompEnabled {
		return []string{}
	}
	return []string{"name=seccomp,profile=builtin"}
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

// events streams /events as newline-delimited JSON until the client goes
// away, or until `until` passes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	pred, err := events.Filter(f)
	if err != nil {
		return err
	}
	since, err := parseTimestamp(r.URL.Query().Get("since"))
	if err != nil {
		return err
	}
	until, err := parseTimestamp(r.URL.Query().Get("until"))
	if err != nil {
		return err
	}
	if apiBefore(r, "1.46") {
		// Image create events came with API 1.46.
		inner := pred
		pred = func(m events.Message) bool {
			return !(m.Type == apievents.ImageEventType && m.Action == apievents.ActionCreate) && inner(m)
		}
	}
	past, ch, cancel := s.eng.Events.Subscribe(since, pred)
	defer cancel()
	ct := "application/x-ndjson"
	if apiBefore(r, "1.52") {
		ct = "application/json" // what the API named it before
	}
	out := streamWriter(w, ct)
	je := json.NewEncoder(out)
	enc := func(m events.Message) error { return je.Encode(eventCompat(r, m)) }
	for _, m := range past {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return nil
		}
		if err := enc(m); err != nil {
			return nil
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-deadline:
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			if err := enc(m); err != nil {
				return nil
			}
		}
	}
}

// eventCompat adds, before API 1.52, the fields of events deprecated since
// 1.22 that clients read until 2024 (the docker CLI before v25 panics
// without them), as dockerd does.
func eventCompat(r *http.Request, m events.Message) any {
	if !apiBefore(r, "1.52") {
		return m
	}
	switch m.Type {
	case apievents.ContainerEventType:
		return wrapped{base: m, extra: map[string]any{"id": m.Actor.ID, "status": m.Action, "from": m.Actor.Attributes["image"]}}
	case apievents.ImageEventType:
		return wrapped{base: m, extra: map[string]any{"id": m.Actor.ID, "status": m.Action}}
	}
	return m
}

// parseTimestamp reads the Engine API's time parameters: Unix seconds with
// an optional fraction ("1700000000.123456789"), or RFC 3339.
func parseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	var secs, nanos int64
	for _, c := range sec {
		if c < '0' || c > '9' {
			return time.Time{}, errdefs.InvalidArgument("invalid timestamp %q", s)
		}
		secs = secs*10 + int64(c-'0')
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	for i := 0; i < 9; i++ {
		nanos *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return time.Time{}, errdefs.InvalidArgument("invalid timestamp %q", s)
			}
			nanos += int64(c - '0')
		}
	}
	return time.Unix(secs, nanos), nil
}
