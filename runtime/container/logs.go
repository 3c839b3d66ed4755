//go:build linux

package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Logs are kept per container in dockerd's json-file format, one JSON object
// per line: {"log":"hello\n","stream":"stdout","time":"2024-…Z"}. Lines
// longer than maxLogLine are split, as dockerd does, so no entry is huge.
const maxLogLine = 16 << 10

type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// logWriter appends a run's output to the container's log file. Followers
// are woken on every write and when the run ends.
type logWriter struct {
	mu      sync.Mutex
	f       *os.File // nil for the "none" driver
	partial map[string][]byte
	wake    chan struct{} // closed and replaced on each write
	closed  bool
}

func openLogWriter(path string, enabled bool) (*logWriter, error) {
	lw := &logWriter{partial: map[string][]byte{}, wake: make(chan struct{})}
	if !enabled {
		return lw, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	lw.f = f
	return lw, nil
}

// write logs p from stream ("stdout"/"stderr"), one entry per complete line.
func (lw *logWriter) write(stream string, p []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.f == nil || lw.closed {
		return
	}
	buf := append(lw.partial[stream], p...)
	var out bytes.Buffer
	now := time.Now().UTC()
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 && len(buf) < maxLogLine {
			break
		}
		n := i + 1
		if i < 0 || n > maxLogLine {
			n = maxLogLine
		}
		encodeEntry(&out, buf[:n], stream, now)
		buf = buf[n:]
	}
	lw.partial[stream] = append(lw.partial[stream][:0], buf...)
	if out.Len() > 0 {
		lw.f.Write(out.Bytes())
		lw.wakeLocked()
	}
}

func encodeEntry(out *bytes.Buffer, line []byte, stream string, t time.Time) {
	b, _ := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: t})
	out.Write(b)
	out.WriteByte('\n')
}

func (lw *logWriter) wakeLocked() {
	close(lw.wake)
	lw.wake = make(chan struct{})
}

// close flushes unterminated lines and ends the log for this run.
func (lw *logWriter) close() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return
	}
	lw.closed = true
	if lw.f != nil {
		var out bytes.Buffer
		now := time.Now().UTC()
		for _, s := range []string{"stdout", "stderr"} {
			if len(lw.partial[s]) > 0 {
				encodeEntry(&out, lw.partial[s], s, now)
			}
		}
		lw.f.Write(out.Bytes())
		lw.f.Close()
	}
	lw.wakeLocked()
}

// waitChan returns a channel closed at the next write or at close, and
// whether the writer is already closed.
func (lw *logWriter) waitChan() (<-chan struct{}, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.wake, lw.closed
}

// LogsOptions select what ReadLogs returns, as the /logs endpoint's query.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Tail           int // -1: all
	Since, Until   time.Time
}

// LogMessage is one logged line.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte
	Time   time.Time
}

// Logs streams the container's logs to fn until they end (or, when
// following, until the container stops or ctx ends). It reports whether
// the container has a TTY (its logs are then not multiplexed).
func (m *Manager) Logs(ctx context.Context, ref string, opts LogsOptions, fn func(LogMessage) error) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	lw := c.logs
	driver := c.rec.HostConfig.LogConfig.Type
	c.mu.Unlock()
	if driver == "none" {
		return nil
	}
	f, err := os.Open(c.logPath())
	if errors.Is(err, os.ErrNotExist) {
		if !opts.Follow || lw == nil {
			return nil
		}
		// Started but nothing written yet: the file appears on first output.
		f, err = os.OpenFile(c.logPath(), os.O_RDONLY|os.O_CREATE, 0o640)
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer f.Close()

	want := func(e *logEntry) bool {
		if (e.Stream == "stdout" && !opts.Stdout) || (e.Stream == "stderr" && !opts.Stderr) {
			return false
		}
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return false
		}
		return true
	}
	past := func(e *logEntry) bool { return !opts.Until.IsZero() && e.Time.After(opts.Until) }
	emit := func(e *logEntry) error {
		return fn(LogMessage{Stream: e.Stream, Line: []byte(e.Log), Time: e.Time})
	}

	r := bufio.NewReaderSize(f, 64<<10)
	var pending []byte
	readEntry := func() (*logEntry, error) {
		for {
			line, err := r.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				pending = append(pending, line...)
				continue
			}
			if err != nil {
				// A partial line at EOF is kept for the next attempt.
				pending = append(pending, line...)
				return nil, err
			}
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = nil
			}
			var e logEntry
			if json.Unmarshal(line, &e) != nil {
				continue // a torn or foreign line is skipped, not fatal
			}
			return &e, nil
		}
	}

	// The backlog, with --tail applied over the lines that pass the filters.
	var tail []*logEntry
	for {
		e, err := readEntry()
		if err != nil {
			break
		}
		if past(e) {
			return flushTail(tail, emit)
		}
		if !want(e) {
			continue
		}
		if opts.Tail < 0 {
			if err := emit(e); err != nil {
				return err
			}
			continue
		}
		if opts.Tail == 0 {
			continue
		}
		if len(tail) == opts.Tail {
			tail = tail[1:]
		}
		tail = append(tail, e)
	}
	if err := flushTail(tail, emit); err != nil {
		return err
	}
	if !opts.Follow || lw == nil {
		return nil
	}
	for {
		wake, closed := lw.waitChan()
		for {
			e, err := readEntry()
			if err != nil {
				break
			}
			if past(e) {
				return nil
			}
			if want(e) {
				if err := emit(e); err != nil {
					return err
				}
			}
		}
		if closed {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

func flushTail(tail []*logEntry, emit func(*logEntry) error) error {
	for _, e := range tail {
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}
