package desktop

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// stubHostd answers the hostapi contract on the socket the window dials,
// standing in for `berth hostd` (app/hostagent) until it lands: it checks
// how the services use the contract, not the VM.
type stubHostd struct {
	mu       sync.Mutex
	st       hostapi.Status
	settings config.Settings
	subs     []chan hostapi.Status
	starts   int
}

func startStubHostd(t *testing.T, paths config.Paths) *stubHostd {
	t.Helper()
	os.MkdirAll(paths.RunDir(), 0o700)
	l, err := net.Listen("unix", paths.HostdSocket())
	if err != nil {
		t.Fatal(err)
	}
	h := &stubHostd{st: hostapi.Status{State: hostapi.Stopped, Driver: "qemu", CPUs: 2, MemoryMiB: 2048, DiskGiB: 64}, settings: config.Defaults()}
	lim := config.Limits{MaxCPUs: 4, MaxMemoryMiB: 8192, Drivers: []string{"qemu"}}
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) { json.NewEncoder(w).Encode(v) }
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { reply(w, h.status()) })
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		h.set(hostapi.Starting)
		h.mu.Lock()
		h.starts++
		h.mu.Unlock()
		reply(w, h.set(hostapi.Running))
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) { reply(w, h.set(hostapi.Stopped)) })
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan hostapi.Status, 16)
		h.mu.Lock()
		h.subs = append(h.subs, ch)
		ch <- h.st
		h.mu.Unlock()
		for {
			select {
			case <-r.Context().Done():
				return
			case s := <-ch:
				reply(w, s)
				w.(http.Flusher).Flush()
			}
		}
	})
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		reply(w, hostapi.SettingsResponse{Settings: h.settings, Limits: lim})
	})
	mux.HandleFunc("PUT /settings", func(w http.ResponseWriter, r *http.Request) {
		var s config.Settings
		json.NewDecoder(r.Body).Decode(&s)
		var verr config.ValidationError
		if err := s.Validate(lim); errors.As(err, &verr) {
			w.WriteHeader(http.StatusBadRequest)
			reply(w, hostapi.ErrorBody{Message: err.Error(), Fields: verr})
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.settings = s
		reply(w, hostapi.SettingsResponse{Settings: s, Limits: lim, RestartRequired: h.st.State == hostapi.Running})
	})
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "log of %s, tail %s\n", r.URL.Query().Get("source"), r.URL.Query().Get("tail"))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *stubHostd) status() hostapi.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

func (h *stubHostd) set(s hostapi.State) hostapi.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.State = s
	for _, ch := range h.subs {
		select {
		case ch <- h.st:
		default:
		}
	}
	return h.st
}

func TestWithHostd(t *testing.T) {
	home, err := os.MkdirTemp("", "bd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	paths := config.Paths{Home: home}
	h := startStubHostd(t, paths)
	rec := newRecorder()
	b, err := New(Options{Paths: paths, DockerHost: "unix://" + filepath.Join(home, "none.sock"), Emitter: rec})
	if err != nil {
		t.Fatal(err)
	}
	b.Run()
	defer b.Close()

	// The machine's state follows hostd's /events.
	rec.wait(t, EventMachine, 5*time.Second, func(d any) bool { ms := d.(MachineStatus); return ms.Hostd && ms.Status.State == "stopped" })
	m := rec.mark()
	st, err := b.Machine().Start()
	if err != nil || st.Status.State != "running" || h.starts != 1 {
		t.Fatalf("start: %+v %v (starts %d)", st, err, h.starts)
	}
	rec.waitAfter(t, m, EventMachine, 5*time.Second, func(d any) bool { return d.(MachineStatus).Status.State == "starting" })
	rec.waitAfter(t, m, EventMachine, 5*time.Second, func(d any) bool { return d.(MachineStatus).Status.State == "running" })
	if st, err := b.Machine().Stop(); err != nil || st.Status.State != "stopped" {
		t.Fatalf("stop: %+v %v", st, err)
	}

	// Settings save through hostd; its field errors come back per field.
	s := &Settings{b}
	v, err := s.Get()
	if err != nil || !v.Hostd || v.Limits.MaxCPUs != 4 {
		t.Fatalf("get: %+v %v", v, err)
	}
	bad := v.Settings
	bad.CPUs = 8
	res, err := s.Save(bad)
	if err != nil || len(res.Fields) != 1 || res.Fields[0].Field != "cpus" || !strings.Contains(res.Fields[0].Message, "between 1 and 4") {
		t.Fatalf("save refused: %+v %v", res, err)
	}
	good := v.Settings
	good.CPUs = 3
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if res, err := s.Save(good); err != nil || len(res.Fields) > 0 || res.View.Settings.CPUs != 3 || !res.View.Hostd {
		t.Fatalf("save: %+v %v", res, err)
	}

	// Troubleshoot reads hostd's logs.
	out, err := (&Troubleshoot{b}).Logs("console", 20)
	if err != nil || out != "log of console, tail 20\n" {
		t.Fatalf("logs: %q %v", out, err)
	}
}
