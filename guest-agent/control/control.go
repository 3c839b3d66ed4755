// Package control is the small host↔guest control API of the VM: health,
// shutdown, clock and disk trim, as JSON over HTTP on the guest's control
// port (transport.PortControl). The guest's PID 1 serves it; the host
// agent and the VM drivers are its clients.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"
)

// Health is what GET /health answers.
type Health struct {
	AgentVersion  string    `json:"agent_version"`
	KernelVersion string    `json:"kernel_version"`
	BootedAt      time.Time `json:"booted_at"`
	Uptime        Duration  `json:"uptime"`
	// BootTime is how long the guest took from kernel start to a serving
	// engine (CLOCK_BOOTTIME when the engine first answered).
	BootTime Duration `json:"boot_time"`
	// Boot is where that time went, phase by phase.
	Boot   Boot    `json:"boot"`
	Engine Engine  `json:"engine"`
	Shares []Share `json:"shares,omitempty"`
	// SharesPending and NetworkPending: shared folders are still being
	// mounted, the network still being configured (the boot goes on
	// while the engine answers).
	SharesPending  bool `json:"shares_pending,omitempty"`
	NetworkPending bool `json:"network_pending,omitempty"`
	// BootError is why the guest could not fully start (a data disk it
	// refused to format …); the engine does not run then.
	BootError   string    `json:"boot_error,omitempty"`
	Disk        Disk      `json:"disk"`
	Time        time.Time `json:"time"` // the guest's clock, to see drift
	MemTotalMiB int       `json:"mem_total_mib"`
	MemAvailMiB int       `json:"mem_available_mib"`
}

// Boot is how the guest's boot goes, on the guest's own clock (times are
// since the kernel started: CLOCK_BOOTTIME). Phases overlap: the engine's
// process starts while modules load and the data disk mounts.
type Boot struct {
	Phases  []Phase `json:"phases,omitempty"`  // those that ended, in the order they ended
	Running []Phase `json:"running,omitempty"` // those in progress (End is zero), in the order they began
}

// Phase names, in the order a boot usually begins them.
const (
	PhaseKernel      = "kernel"       // kernel start → it runs /init
	PhaseInitrd      = "initrd"       // the kernel unpacks the initramfs (within PhaseKernel)
	PhaseInit        = "init"         // /init (berth-init) starts: Go runtime and package init
	PhaseModules     = "modules"      // the modules of the host channel (and a virtio disk)
	PhaseSystem      = "system"       // the system disk mounted
	PhaseDisk        = "disk"         // the data disk checked (formatted if blank), mounted
	PhaseEngineStart = "engine-start" // the engine's process starts: Go runtime and package init
	PhaseEngineOpen  = "engine-open"  // the engine opens its state and answers /_ping
	PhaseNetwork     = "network"      // the network's modules and addresses
	PhaseShares      = "shares"       // shared folders mounted
)

// Phase is one step of the boot.
type Phase struct {
	Name  string   `json:"name"`
	Start Duration `json:"start"` // since the kernel started
	End   Duration `json:"end"`
}

// Took is how long p lasted.
func (p Phase) Took() time.Duration { return time.Duration(p.End - p.Start) }

// Engine is the state of the engine process PID 1 supervises.
type Engine struct {
	Running  bool   `json:"running"`
	Ready    bool   `json:"ready"` // answers /_ping
	PID      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
}

// Disk is the usage of the data disk.
type Disk struct {
	Device    string `json:"device"`
	Mounted   bool   `json:"mounted"`
	SizeBytes uint64 `json:"size_bytes"`
	UsedBytes uint64 `json:"used_bytes"`
	FreeBytes uint64 `json:"free_bytes"`
	Formatted bool   `json:"formatted_this_boot,omitempty"`
	Grown     bool   `json:"grown_this_boot,omitempty"` // the filesystem grew to a bigger disk
}

// Share is a host folder mounted in the guest.
type Share struct {
	Tag     string `json:"tag"`
	Path    string `json:"path"`
	Mounted bool   `json:"mounted"`
	Error   string `json:"error,omitempty"`
}

// SetTime is the body of POST /time.
type SetTime struct {
	UnixNano int64 `json:"unix_nano"`
}

// Trimmed answers POST /fstrim.
type Trimmed struct {
	Bytes uint64 `json:"bytes"`
}

// Duration is a time.Duration that reads as "1.5s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Machine is what the guest's PID 1 provides to the API.
type Machine interface {
	Health(ctx context.Context) Health
	// Shutdown starts a clean power-off and returns at once.
	Shutdown()
	SetTime(t time.Time) error
	Trim(ctx context.Context) (uint64, error)
}

// Handler serves the control API for m.
func Handler(m Machine) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, m.Health(r.Context()))
	})
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) {
		m.Shutdown()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /time", func(w http.ResponseWriter, r *http.Request) {
		var req SetTime
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.UnixNano <= 0 {
			replyErr(w, http.StatusBadRequest, fmt.Errorf("want {\"unix_nano\": N} with N > 0"))
			return
		}
		if err := m.SetTime(time.Unix(0, req.UnixNano)); err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /fstrim", func(w http.ResponseWriter, r *http.Request) {
		n, err := m.Trim(r.Context())
		if err != nil {
			replyErr(w, http.StatusInternalServerError, err)
			return
		}
		reply(w, http.StatusOK, Trimmed{Bytes: n})
	})
	mux.HandleFunc("GET /debug/pprof/profile", cpuProfile)
	if sh, ok := m.(Shells); ok {
		registerShell(mux, sh)
	}
	return mux
}

// cpuProfile answers a CPU profile of this process (pprof's format) over
// ?seconds=N (default 10, at most 120).
func cpuProfile(w http.ResponseWriter, r *http.Request) {
	sec, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || sec <= 0 {
		sec = 10
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		replyErr(w, http.StatusConflict, err)
		return
	}
	select {
	case <-time.After(time.Duration(min(sec, 120)) * time.Second):
	case <-r.Context().Done():
	}
	pprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(buf.Bytes())
}

type errorBody struct {
	Message string `json:"message"`
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func replyErr(w http.ResponseWriter, code int, err error) {
	reply(w, code, errorBody{Message: err.Error()})
}

// errorMessage reads an error answer's message (or says there was none).
func errorMessage(r io.Reader) string {
	var e errorBody
	if json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&e) != nil || e.Message == "" {
		return "no message"
	}
	return e.Message
}

// Client calls the control API over connections from Dial (a driver's
// DialGuest on transport.PortControl).
type Client struct {
	Dial func(ctx context.Context) (net.Conn, error)
}

func (c *Client) http() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return c.Dial(ctx) },
		DisableKeepAlives: true,
	}}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://guest"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("guest control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("guest control %s %s: %s: %s", method, path, resp.Status, errorMessage(resp.Body))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("guest control %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Health asks the guest for its health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, "/health", nil, &h)
	return h, err
}

// Shutdown asks the guest to power off cleanly: stop the engine, trim and
// sync the data disk, power off. It returns once the guest has begun.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", nil, nil)
}

// SetTime sets the guest clock (at start, and after the host slept).
func (c *Client) SetTime(ctx context.Context, t time.Time) error {
	return c.do(ctx, http.MethodPost, "/time", SetTime{UnixNano: t.UnixNano()}, nil)
}

// Trim discards the data disk's free blocks so the host's sparse image
// shrinks.
func (c *Client) Trim(ctx context.Context) (uint64, error) {
	var t Trimmed
	err := c.do(ctx, http.MethodPost, "/fstrim", nil, &t)
	return t.Bytes, err
}
