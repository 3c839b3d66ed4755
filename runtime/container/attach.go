//go:build linux

package container

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// maxPending bounds what an attachment buffers between its registration and
// the moment the client's connection is ready (the API answers the attach
// request only after registering, so no early output is lost).
const maxPending = 1 << 20

// attachment is one client attached to a container's output.
type attachment struct {
	wantOut, wantErr bool
	connected        bool
	stdout, stderr   io.Writer // set by connect; nil for an unwanted stream
	pending          bytes.Buffer
	pendingStreams   []pendingChunk
	done             chan struct{}
	once             sync.Once
}

type pendingChunk struct {
	stderr bool
	n      int
}

func (a *attachment) finish() { a.once.Do(func() { close(a.done) }) }

// attachers fans a container's output out to attached clients. Writes are
// synchronous, so a client that does not read slows the container down, as
// with dockerd; a client whose connection fails is dropped.
type attachers struct {
	mu  sync.Mutex
	set map[*attachment]struct{}
}

func newAttachers() *attachers { return &attachers{set: map[*attachment]struct{}{}} }

func (as *attachers) add(a *attachment) {
	as.mu.Lock()
	as.set[a] = struct{}{}
	as.mu.Unlock()
}

func (as *attachers) remove(a *attachment) {
	as.mu.Lock()
	delete(as.set, a)
	as.mu.Unlock()
}

// connect hands the attachment its writers, first flushing what arrived
// while the client was being answered.
func (as *attachers) connect(a *attachment, stdout, stderr io.Writer) {
	as.mu.Lock()
	defer as.mu.Unlock()
	data := a.pending.Bytes()
	for _, ch := range a.pendingStreams {
		w := stdout
		if ch.stderr {
			w = stderr
		}
		if w != nil {
			w.Write(data[:ch.n])
		}
		data = data[ch.n:]
	}
	a.pending = bytes.Buffer{}
	a.pendingStreams = nil
	a.stdout, a.stderr, a.connected = stdout, stderr, true
}

func (as *attachers) write(stderr bool, p []byte) {
	as.mu.Lock()
	defer as.mu.Unlock()
	for a := range as.set {
		if (stderr && !a.wantErr) || (!stderr && !a.wantOut) {
			continue
		}
		w := a.stdout
		if stderr {
			w = a.stderr
		}
		if !a.connected {
			if a.pending.Len()+len(p) <= maxPending {
				a.pending.Write(p)
				a.pendingStreams = append(a.pendingStreams, pendingChunk{stderr: stderr, n: len(p)})
			}
			continue
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			delete(as.set, a)
			a.finish()
		}
	}
}

// endRun ends every attachment: the run's output is complete.
func (as *attachers) endRun() {
	as.mu.Lock()
	defer as.mu.Unlock()
	for a := range as.set {
		delete(as.set, a)
		a.finish()
	}
}

// AttachOptions is an attach request: which streams, and the detach keys.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Logs                  bool // replay the logs first
	Stream                bool // then stream live output
	DetachKeys            string
}

// Attachment is a registered attach; call Run once the client is ready.
type Attachment struct {
	m    *Manager
	c    *Container
	opts AttachOptions
	a    *attachment
	keys []byte
	Tty  bool // the container has a TTY: output is raw, not multiplexed
}

// ErrDetached ends an attach when the client typed the detach keys.
var ErrDetached = errors.New("detached from container")

// Attach validates and registers an attach. Output produced from now on is
// kept for the client until Run connects it.
func (m *Manager) Attach(ref string, opts AttachOptions) (*Attachment, error) {
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	keys, err := ParseDetachKeys(opts.DetachKeys)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	tty, status := c.rec.Config.Tty, c.rec.State.Status
	c.mu.Unlock()
	if status == ctr.StatePaused && opts.Stream {
		return nil, errdefs.Conflict("You cannot attach to a paused container, unpause it first")
	}
	at := &Attachment{m: m, c: c, opts: opts, keys: keys, Tty: tty}
	if opts.Stream {
		at.a = &attachment{wantOut: opts.Stdout, wantErr: opts.Stderr && !tty, done: make(chan struct{})}
		c.attach.add(at.a)
		// Published now, before the API answers, so it precedes the start
		// a client sends next (docker run).
		m.event(c, events.ActionAttach, nil)
	}
	return at, nil
}

// Close unregisters an attachment that will not be Run.
func (at *Attachment) Close() {
	if at.a != nil {
		at.c.attach.remove(at.a)
		at.a.finish()
	}
}

// Run streams: logs first when asked, then live output until the run ends,
// ctx ends, or the client detaches. stdin (may be nil) feeds the
// container's stdin when it was created with OpenStdin.
func (at *Attachment) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	defer at.Close()
	if !at.opts.Stdout {
		stdout = nil
	}
	if !at.opts.Stderr {
		stderr = nil
	}
	if at.opts.Logs {
		err := at.m.Logs(ctx, at.c.rec.ID, LogsOptions{Stdout: stdout != nil, Stderr: stderr != nil, Tail: -1}, func(msg LogMessage) error {
			w := stdout
			if msg.Stream == "stderr" {
				w = stderr
			}
			if w == nil {
				return nil
			}
			_, err := w.Write(msg.Line)
			return err
		})
		if err != nil {
			return err
		}
	}
	if !at.opts.Stream {
		return nil
	}
	at.c.attach.connect(at.a, stdout, stderr)
	detached := make(chan struct{})
	if at.opts.Stdin && stdin != nil {
		go at.copyStdin(stdin, detached)
	}
	select {
	case <-at.a.done:
		return nil
	case <-detached:
		return ErrDetached
	case <-ctx.Done():
		return nil
	}
}

// copyStdin forwards the client's input to the container's stdin, waiting
// for the container to start if needed. With a TTY the detach keys end the
// attach; without one, end of input closes the container's stdin when it
// was created with StdinOnce.
func (at *Attachment) copyStdin(in io.Reader, detached chan struct{}) {
	c := at.c
	c.mu.Lock()
	tty, once, open := c.rec.Config.Tty, c.rec.Config.StdinOnce, c.rec.Config.OpenStdin
	c.mu.Unlock()
	if !open {
		io.Copy(io.Discard, in)
		return
	}
	var esc *escapeScanner
	if tty && len(at.keys) > 0 {
		esc = &escapeScanner{keys: at.keys}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			p := buf[:n]
			if esc != nil {
				var hit bool
				p, hit = esc.scan(p)
				if hit {
					close(detached)
					return
				}
			}
			if w := c.waitStdin(at.a.done); w != nil && len(p) > 0 {
				if _, werr := w.Write(p); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if once && !tty {
				c.closeStdin()
			}
			return
		}
	}
}

// waitStdin returns the current run's stdin, waiting for a start (or for
// done) when the container is not running yet.
func (c *Container) waitStdin(done <-chan struct{}) *os.File {
	for {
		c.mu.Lock()
		r, changed := c.run, c.changed
		c.mu.Unlock()
		if r != nil {
			return r.stdinFile()
		}
		select {
		case <-changed:
		case <-done:
			return nil
		}
	}
}

func (c *Container) closeStdin() {
	c.mu.Lock()
	r := c.run
	c.mu.Unlock()
	if r != nil {
		r.closeStdin()
	}
}

// escapeScanner recognises the detach key sequence in a TTY's input. Keys
// typed as a prefix of the sequence are held back until it is clear they
// are not the sequence.
type escapeScanner struct {
	keys    []byte
	matched int
}

func (e *escapeScanner) scan(p []byte) ([]byte, bool) {
	var out []byte
	for _, b := range p {
		if b == e.keys[e.matched] {
			e.matched++
			if e.matched == len(e.keys) {
				return out, true
			}
			continue
		}
		out = append(out, e.keys[:e.matched]...)
		e.matched = 0
		if b == e.keys[0] {
			e.matched = 1
			continue
		}
		out = append(out, b)
	}
	return out, false
}

// ParseDetachKeys reads docker's detach key syntax: a comma-separated list
// of single characters or ctrl-<x> (ctrl-a … ctrl-z, ctrl-@, ctrl-[ …).
// Empty means the default, ctrl-p,ctrl-q.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, errdefs.InvalidArgument("Invalid escape keys (%s) provided", s)
			}
		default:
			return nil, errdefs.InvalidArgument("Invalid escape keys (%s) provided", s)
		}
	}
	return out, nil
}
