// Package desktop holds the services the desktop window binds: Machine,
// Containers, Images, Volumes, Settings and Troubleshoot. They speak the
// Docker Engine API (moby/moby/client) to the engine and the host agent's
// status API (hostapi) to hostd, and push live changes to the window through
// an Emitter. Nothing here imports Wails: the glue in the root main.go
// implements Emitter and Dialogs, so every service is testable without a
// window. Each bound method does one user-facing thing; none runs host
// commands or reads arbitrary files.
package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// Emitter delivers an event to the window (Wails: runtime.EventsEmit).
// Implementations must be safe for concurrent use.
type Emitter interface {
	Emit(name string, data any)
}

// Event names the window listens for. Per-operation streams append ":" and
// the stream ID (e.g. "logs:3").
const (
	EventMachine    = "machine"    // MachineStatus
	EventContainers = "containers" // []Container, after any container event
	EventImages     = "images"     // []Image, after any image event
	EventVolumes    = "volumes"    // []Volume, after any volume event
	EventOp         = "op"         // OpProgress of a pull or build ("op:ID")
	EventLogs       = "logs"       // LogChunk ("logs:ID")
	EventStats      = "stats"      // StatsSample ("stats:ID")
	EventTerm       = "term"       // TermOutput ("term:ID")
)

// Options configure a Backend.
type Options struct {
	Paths config.Paths
	// DockerHost is the engine's address; "" means $DOCKER_HOST, else the
	// socket hostd forwards (Paths.DockerHost()).
	DockerHost string
	// BerthBinary launches `berth hostd` when the machine is started and no
	// hostd runs; "" finds berth next to this executable, else on PATH.
	BerthBinary string
	Emitter     Emitter
	// UI opens URLs in the browser and shows the folder picker (Wails
	// runtime functions in the window); nil in tests.
	UI  UI
	Log *slog.Logger
}

// UI is what the services need from the window besides events.
type UI interface {
	OpenURL(url string) error
	PickFolder(title string) (string, error)
}

// Backend is the state the services share: the engine and hostd clients,
// the live watchers and the running streams. Create it with New, call Run
// once the window exists, and Close at exit.
type Backend struct {
	paths      config.Paths
	dockerHost string
	explicit   bool // DockerHost was given (or $DOCKER_HOST): an engine not managed by hostd
	berthBin   string
	emit       Emitter
	ui         UI
	log        *slog.Logger
	docker     *client.Client
	hostd      *hostapi.Client
	streams    *streams

	mu      sync.Mutex
	machine MachineStatus
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // asks the engine watcher to reconnect now
	kickHd  chan struct{} // asks the machine watcher to dial hostd now
}

// New builds the backend; it does not contact anything yet.
func New(o Options) (*Backend, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Emitter == nil {
		o.Emitter = nopEmitter{}
	}
	host, explicit := o.DockerHost, o.DockerHost != ""
	if host == "" {
		if env := os.Getenv("DOCKER_HOST"); env != "" {
			host, explicit = env, true
		} else {
			host = o.Paths.DockerHost()
		}
	}
	dc, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation(), client.WithUserAgent("berth-desktop"))
	if err != nil {
		return nil, fmt.Errorf("engine client for %s: %w", host, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backend{
		paths: o.Paths, dockerHost: host, explicit: explicit, berthBin: o.BerthBinary,
		emit: o.Emitter, ui: o.UI, log: o.Log, docker: dc, hostd: hostapi.NewClient(o.Paths.HostdSocket()),
		streams: newStreams(), ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1), kickHd: make(chan struct{}, 1),
		machine: MachineStatus{Status: hostapi.Status{State: hostapi.Stopped, DockerHost: host}},
	}
	return b, nil
}

// Run starts the watchers that keep the window live: hostd's /events (the
// machine's state) and the engine's /events (containers, images, volumes).
// It returns at once; Close stops them.
func (b *Backend) Run() {
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.watchMachine(b.ctx) }()
	go func() { defer b.wg.Done(); b.watchEngine(b.ctx) }()
}

// Close stops the watchers and every open stream.
func (b *Backend) Close() {
	b.cancel()
	b.streams.closeAll()
	b.wg.Wait()
	b.docker.Close()
}

// DockerHost is the engine address the window talks to.
func (b *Backend) DockerHost() string { return b.dockerHost }

// Services returns the bound services, in the order the window lists them.
func (b *Backend) Services() []any {
	return []any{b.Machine(), b.Containers(), b.Images(), &Volumes{b}, &Settings{b}, &Troubleshoot{b}}
}

// Machine, Containers and Images are the services the tray also drives.
func (b *Backend) Machine() *Machine       { return &Machine{b} }
func (b *Backend) Containers() *Containers { return &Containers{b} }
func (b *Backend) Images() *Images         { return &Images{b} }

func (b *Backend) openURL(u string) error {
	if b.ui == nil {
		return errors.New("no window to open " + u + " from")
	}
	return b.ui.OpenURL(u)
}

type nopEmitter struct{}

func (nopEmitter) Emit(string, any) {}

// engineError turns a client error into the message the user sees: the
// engine's own words, without the client's "Error response from daemon: ".
func engineError(action string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: cancelled", action)
	}
	msg := strings.TrimPrefix(err.Error(), "Error response from daemon: ")
	if client.IsErrConnectionFailed(err) {
		msg = "the engine is not running (start the machine first)"
	}
	return &UserError{Action: action, Message: msg, err: err}
}

// UserError is an error shown where it happened: what was being done and
// the engine's message.
type UserError struct {
	Action  string
	Message string
	err     error
}

func (e *UserError) Error() string { return e.Action + ": " + e.Message }
func (e *UserError) Unwrap() error { return e.err }

// opCtx is a context for one user action: bounded, and ended by Close.
func (b *Backend) opCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, d)
}
