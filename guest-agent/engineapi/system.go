//go:build linux

package engineapi

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

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
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH, "KernelVersion": kernelVersion(), "GoVersion": runtime.Version()},
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
		Driver:             "overlayfs",
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
	}
	s.fillInfo(&info)
	return writeJSON(w, http.StatusOK, info)
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
	past, ch, cancel := s.eng.Events.Subscribe(since, pred)
	defer cancel()
	out := streamWriter(w, "application/json")
	enc := json.NewEncoder(out)
	for _, m := range past {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return nil
		}
		if err := enc.Encode(m); err != nil {
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
			if err := enc.Encode(m); err != nil {
				return nil
			}
		}
	}
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
