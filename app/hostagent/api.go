package hostagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"os"
	"reflect"
	"runtime"
	"strconv"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// handler serves the status API (see package hostapi).
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		a.refreshDiskUsage(r.Context())
		reply(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Start(r.Context())
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Stop(r.Context(), r.URL.Query().Get("force") == "1"); err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		reply(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Restart(r.Context())
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		reply(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /events", a.serveEvents)
	mux.HandleFunc("GET /logs", a.serveLogs)
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		s, err := config.Load(a.paths)
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		reply(w, http.StatusOK, a.settingsResponse(s))
	})
	mux.HandleFunc("PUT /settings", a.putSettings)
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		a.log.Info("shutdown asked", "stopVM", r.URL.Query().Get("stopVM") == "1")
		go a.Shutdown()
	})
	shell := a.guestProxy()
	mux.Handle("POST /shell", shell)
	mux.Handle("POST /shell/{id}/resize", shell)
	mux.Handle("GET /shell/{id}/exit", shell)
	// CPU profiles, for docs/benchmarks.md: hostd's own, and the guest's
	// PID 1 (its channel end, the dial service of published ports).
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.Handle("GET /guest/debug/pprof/profile", http.StripPrefix("/guest", shell))
	return mux
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func replyErr(w http.ResponseWriter, code int, err error) {
	body := hostapi.ErrorBody{Message: err.Error()}
	var ve config.ValidationError
	if errors.As(err, &ve) {
		body.Fields = ve
	}
	reply(w, code, body)
}

// serveEvents streams status changes as JSON lines, the current first.
func (a *Agent) serveEvents(w http.ResponseWriter, r *http.Request) {
	ch, cancel := a.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for {
		select {
		case st, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(st); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tail := -1
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			replyErr(w, http.StatusBadRequest, fmt.Errorf("tail=%q: want a number", v))
			return
		}
		tail = n
	}
	path, agentOnly, err := LogFile(a.paths, q.Get("source"))
	if err != nil {
		replyErr(w, http.StatusBadRequest, err)
		return
	}
	follow := q.Get("follow") == "1"
	if _, err := os.Stat(path); err != nil && !follow {
		replyErr(w, http.StatusNotFound, fmt.Errorf("no %s log yet (%s)", q.Get("source"), path))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if err := TailLog(r.Context(), w, path, agentOnly, tail, follow); err != nil && r.Context().Err() == nil {
		a.log.Warn("logs", "source", q.Get("source"), "err", err)
	}
}

// limits are this host's bounds for the settings: all its CPUs, its memory
// less 1 GiB for itself, the drivers built in.
func (a *Agent) limits() config.Limits {
	lim := config.Limits{MaxCPUs: runtime.NumCPU(), Drivers: driver.Names()}
	if total := int(totalMemory() >> 20); total > 0 {
		lim.MaxMemoryMiB = max(total-1024, 512)
	}
	return lim
}

// Limits are the host's bounds for the settings (for `berth start` flags
// without a running hostd).
func Limits() config.Limits { return (&Agent{}).limits() }

func (a *Agent) settingsResponse(s config.Settings) hostapi.SettingsResponse {
	a.mu.Lock()
	running := a.st.State == hostapi.Running
	booted := a.booted
	a.mu.Unlock()
	return hostapi.SettingsResponse{Settings: s, Limits: a.limits(),
		RestartRequired: running && !reflect.DeepEqual(normalize(booted), normalize(s))}
}

// normalize makes nil and empty lists compare equal.
func normalize(s config.Settings) config.Settings {
	for _, l := range []*[]string{&s.SharedFolders, &s.InsecureRegistries, &s.RegistryMirrors} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	s.StartAtLogin = false // not a machine setting
	return s
}

func (a *Agent) putSettings(w http.ResponseWriter, r *http.Request) {
	var s config.Settings
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		replyErr(w, http.StatusBadRequest, fmt.Errorf("settings: %w", err))
		return
	}
	if err := config.Save(a.paths, s, a.limits()); err != nil {
		code := http.StatusInternalServerError
		var ve config.ValidationError
		if errors.As(err, &ve) {
			code = http.StatusBadRequest
		}
		replyErr(w, code, err)
		return
	}
	a.log.Info("settings saved", "cpus", s.CPUs, "memoryMiB", s.MemoryMiB, "diskGiB", s.DiskGiB, "driver", s.Driver)
	a.mu.Lock()
	if a.st.State != hostapi.Running && a.st.State != hostapi.Starting {
		a.setResources(s)
		a.publishLocked()
	}
	a.mu.Unlock()
	reply(w, http.StatusOK, a.settingsResponse(s))
}

// guestProxy relays requests (and their upgraded streams: shells) to the
// guest's control API.
func (a *Agent) guestProxy() http.Handler {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			a.mu.Lock()
			drv, running := a.drv, a.st.State == hostapi.Running
			a.mu.Unlock()
			if !running {
				return nil, errors.New("the machine is not running: start it with `berth start`")
			}
			if drv.Info().HostPorts {
				return nil, errors.New("the native driver runs no machine to open a shell in")
			}
			return drv.DialGuest(ctx, transport.PortControl)
		},
		DisableKeepAlives: true,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = "http", "guest", "guest"
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			replyErr(w, http.StatusServiceUnavailable, err)
		},
	}
}
