// Package hostapi is the host agent's status API: the contract between
// `berth hostd` (the server, in app/hostagent) and its clients (the berth
// CLI, the desktop window, the tray). JSON over HTTP on
// $BERTH_HOME/run/hostd.sock (mode 0600):
//
//	GET  /status                 → Status
//	POST /start                  → Status, once the engine answers (or an error)
//	POST /stop?force=1           → Status, once stopped
//	POST /restart                → Status
//	GET  /events                 → newline-delimited Status objects, one per change, the current one first
//	GET  /logs?source=S&tail=N&follow=1 → text; S is hostd, agent or console
//	GET  /settings               → SettingsResponse
//	PUT  /settings               → SettingsResponse; invalid settings → 400 with Error.Fields
//	POST /shutdown?stopVM=1      → 202; hostd exits. The VM never outlives hostd
//	                               (no one would forward its socket): it is
//	                               stopped cleanly either way.
//	POST /shell?rows=R&cols=C&term=T&cmd=…  Upgrade: tcp → 101, then a root
//	                               terminal in the VM (X-Berth-Shell: ID)
//	POST /shell/{id}/resize?rows=R&cols=C   → 204
//	GET  /shell/{id}/exit          → {"exitCode": N} once the shell ended
//	GET  /debug/pprof/profile?seconds=N        → hostd's CPU profile (pprof)
//	GET  /guest/debug/pprof/profile?seconds=N  → the guest PID 1's
//
// Errors are {"message": "...", "fields": [...]} with a 4xx/5xx status.
package hostapi

import (
	"time"

	"github.com/berth-dev/berth/app/config"
)

// State is the machine's state as the user sees it.
type State string

const (
	Stopped  State = "stopped"
	Starting State = "starting"
	Running  State = "running"
	Stopping State = "stopping"
	Error    State = "error" // the last start failed or the VM died and could not be restarted
)

// Status is everything the window and tray show about the machine.
type Status struct {
	State         State     `json:"state"`
	Driver        string    `json:"driver"`          // qemu, vz, wsl, native
	Accel         string    `json:"accel,omitempty"` // kvm, hvf, whpx, tcg
	CPUs          int       `json:"cpus"`
	MemoryMiB     int       `json:"memoryMiB"`
	DiskGiB       int       `json:"diskGiB"`
	DiskUsedBytes int64     `json:"diskUsedBytes,omitempty"`
	DockerHost    string    `json:"dockerHost"`              // unix://…/docker.sock
	EngineVersion string    `json:"engineVersion,omitempty"` // from the engine's /version
	HostdVersion  string    `json:"hostdVersion"`
	StartedAt     time.Time `json:"startedAt,omitzero"`
	Restarts      int       `json:"restarts"`               // VM restarts after crashes since hostd started
	MachinePID    int       `json:"machinePID,omitempty"`   // the host process running the machine (qemu …)
	Kernel        string    `json:"kernel,omitempty"`       // the guest's kernel release
	AgentVersion  string    `json:"agentVersion,omitempty"` // berth-agent in the guest
	Error         string    `json:"error,omitempty"`        // why the state is Error, or the last crash
	// Ports are the published ports hostd forwards from the host.
	Ports []ForwardedPort `json:"ports,omitempty"`
	// Boot is the last start, phase by phase: filled as it goes (the CLI
	// and the window show it while starting), complete once running.
	Boot []BootPhase `json:"boot,omitempty"`
}

// BootPhase is one phase of a start. Phases overlap (the engine's process
// starts while the data disk mounts); times are since the start began.
type BootPhase struct {
	Name    string  `json:"name"`
	Label   string  `json:"label"` // PhaseLabel(Name)
	StartMS float64 `json:"startMs"`
	EndMS   float64 `json:"endMs"` // while running: when last reported
	Running bool    `json:"running,omitempty"`
}

// Took is how long p lasted (so far).
func (p BootPhase) Took() time.Duration {
	return time.Duration((p.EndMS - p.StartMS) * float64(time.Millisecond))
}

// PhaseLabel says what a phase of the start is, for people.
func PhaseLabel(name string) string {
	switch name {
	case "vm":
		return "Starting the virtual machine"
	case "kernel":
		return "Booting Linux"
	case "initrd":
		return "Unpacking the initramfs"
	case "init":
		return "Starting berth-init"
	case "modules":
		return "Loading drivers"
	case "system":
		return "Mounting the system disk"
	case "disk":
		return "Mounting the data disk"
	case "engine-start":
		return "Starting the engine"
	case "engine-open":
		return "Opening the engine's state"
	case "network":
		return "Bringing up the network"
	case "shares":
		return "Mounting shared folders"
	case "connect":
		return "Connecting to the engine"
	case "ready":
		return "Checking the machine"
	}
	return name
}

// ForwardedPort is one published container port forwarded by hostd.
type ForwardedPort struct {
	Container string `json:"container"` // container ID
	Proto     string `json:"proto"`     // tcp, udp
	HostIP    string `json:"hostIP"`
	HostPort  int    `json:"hostPort"`
	GuestPort int    `json:"guestPort"`
}

// SettingsResponse carries the saved settings and whether they differ from
// what the running machine uses (the change applies at the next restart).
type SettingsResponse struct {
	Settings        config.Settings `json:"settings"`
	Limits          config.Limits   `json:"limits"`
	RestartRequired bool            `json:"restartRequired"`
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Message string               `json:"message"`
	Fields  []*config.FieldError `json:"fields,omitempty"`
}
