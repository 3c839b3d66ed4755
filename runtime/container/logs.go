//go:build linux

package container

import (
	"bufio"
	"path/filepath"
	"strconv"

	units "github.com/docker/go-units"
	ctr "github.com/moby/moby/api/types/container"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/runtime/errdefs"
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

// logOptions are the json-file driver's --log-opt settings.
type logOptions struct {
	maxSize  int64 // rotate when the file reaches this size; 0: never
	maxFiles int   // files kept, the current one included
}

// parseLogOptions reads dockerd's json-file options; unknown ones are
// refused as dockerd refuses them.
func parseLogOptions(cfg ctr.LogConfig) (logOptions, error) {
	o := logOptions{maxFiles: 1}
	for k, v := range cfg.Config {
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if v == "-1" { // dockerd's "unlimited"
				n, err = 0, nil
			}
			if err != nil || n < 0 {
				return o, errdefs.InvalidArgument("invalid max-size %q for the json-file log driver", v)
			}
			o.maxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, errdefs.InvalidArgument("invalid max-file %q for the json-file log driver: must be a positive number", v)
			}
			o.maxFiles = n
		case "compress":
			if b, _ := strconv.ParseBool(v); b {
				return o, errdefs.InvalidArgument("compressed log files are not supported")
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
			// accepted; they only add attributes dockerd writes as "attrs"
		default:
			return o, errdefs.InvalidArgument("unknown log opt '%s' for json-file log driver", k)
		}
	}
	// max-file without max-size is accepted, as dockerd accepts it: with
	// no size limit the log never rotates, so there is one file.
	return o, nil
}

// rotatedPath is the i-th older log file: path.1 is the newest rotated one.
func rotatedPath(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// logWriter appends a run's output to the container's log file, rotating
// it at max-size. Followers are woken on every write and when the run ends.
type logWriter struct {
	mu      sync.Mutex
	path    string
	opts    logOptions
	f       *os.File // nil for the "none" driver
	size    int64
	partial map[string][]byte
	wake    chan struct{} // closed and replaced on each write
	closed  bool
}

func openLogWriter(path string, enabled bool, opts logOptions) (*logWriter, error) {
	lw := &logWriter{path: path, opts: opts, partial: map[string][]byte{}, wake: make(chan struct{})}
	if !enabled {
		return lw, nil
	}
	if err := lw.openLocked(); err != nil {
		return nil, err
	}
	return lw, nil
}

func (lw *logWriter) openLocked() error {
	f, err := os.OpenFile(lw.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	lw.f, lw.size = f, st.Size()
	return nil
}

// rotateLocked shifts path → path.1 → … keeping maxFiles files in all.
func (lw *logWriter) rotateLocked() {
	lw.f.Close()
	lw.f = nil
	if lw.opts.maxFiles <= 1 {
		os.Remove(lw.path)
	} else {
		for i := lw.opts.maxFiles - 1; i >= 1; i-- {
			os.Rename(rotatedPath(lw.path, i-1), rotatedPath(lw.path, i))
		}
	}
	lw.openLocked() // on failure, logging stops for this run rather than failing it
}

// write logs p from stream ("stdout"/"stderr"), one entry per complete line.
func (lw *logWriter) write(stream string, p []byte) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.f == nil || lw.closed {
		return
	}
	buf := append(lw.partial[stream], p...)
	now := time.Now().UTC()
	var out bytes.Buffer
	wrote := false
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 && len(buf) < maxLogLine {
			break
		}
		n := i + 1
		if i < 0 || n > maxLogLine {
			n = maxLogLine
		}
		out.Reset()
		encodeEntry(&out, buf[:n], stream, now)
		buf = buf[n:]
		// Rotate before an entry that would take the file past max-size,
		// so no file holds more than max-size (or one entry).
		if lw.opts.maxSize > 0 && lw.size > 0 && lw.size+int64(out.Len()) > lw.opts.maxSize {
			lw.rotateLocked()
			if lw.f == nil {
				break
			}
		}
		m, _ := lw.f.Write(out.Bytes())
		lw.size += int64(m)
		wrote = true
	}
	lw.partial[stream] = append(lw.partial[stream][:0], buf...)
	if wrote {
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
		lw.f = nil
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

// holdRotation runs f while no rotation can rename the log files (lw nil:
// no writer), so that f sees path, path.1, … as one consistent chain: a
// reader that stats them during a rotation can take one file for another
// and skip a whole file of lines.
func (lw *logWriter) holdRotation(f func()) {
	if lw != nil {
		lw.mu.Lock()
		defer lw.mu.Unlock()
	}
	f()
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
	// Every file is opened before reading, oldest first, so a rotation
	// during the read does not reorder what is sent.
	path := c.logPath()
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var cur *os.File
	lw.holdRotation(func() {
		rotated, _ := filepath.Glob(path + ".*")
		for i := len(rotated); i >= 1; i-- {
			if f, err := os.Open(rotatedPath(path, i)); err == nil {
				files = append(files, f)
			}
		}
		cur, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) && opts.Follow && lw != nil {
			// Started but nothing written yet: the file appears on first output.
			cur, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o640)
		}
	})
	if err == nil {
		files = append(files, cur)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("logs: %w", err)
	}

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

	var r *bufio.Reader
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
	for _, f := range files {
		r, pending = bufio.NewReaderSize(f, 64<<10), nil
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
	}
	if err := flushTail(tail, emit); err != nil {
		return err
	}
	if !opts.Follow || lw == nil || len(files) == 0 {
		return nil
	}
	cur = files[len(files)-1]
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
		// Rotated: what was written to the old file has been read; go on
		// with the one written after it.
		var next *os.File
		lw.holdRotation(func() { next = nextLogFile(path, cur) })
		if f := next; f != nil {
			files = append(files, f)
			cur, r, pending = f, bufio.NewReaderSize(f, 64<<10), nil
			continue
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

// nextLogFile opens the file written after cur, when cur has been rotated
// away from path (nil while cur is still the current file). After
// rotations path.k is cur, so path.(k-1) follows it.
func nextLogFile(path string, cur *os.File) *os.File {
	old, err := cur.Stat()
	if err != nil {
		return nil
	}
	if st, err := os.Stat(path); err != nil || os.SameFile(st, old) {
		return nil
	}
	next := path // cur fell off the end: go on with what is left
	for k := 1; ; k++ {
		st, err := os.Stat(rotatedPath(path, k))
		if err != nil {
			if k > 1 {
				next = rotatedPath(path, k-1)
			}
			break
		}
		if os.SameFile(st, old) {
			next = rotatedPath(path, k-1)
			break
		}
	}
	f, err := os.Open(next)
	if err != nil {
		return nil
	}
	return f
}

func flushTail(tail []*logEntry, emit func(*logEntry) error) error {
	for _, e := range tail {
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}
