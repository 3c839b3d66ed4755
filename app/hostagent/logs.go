package hostagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/app/config"
)

// LogSources are the logs `berth logs` and the window show.
var LogSources = []string{"hostd", "agent", "console"}

// HostdLog is hostd's own log file.
func HostdLog(p config.Paths) string { return filepath.Join(p.LogsDir(), "hostd.log") }

// LogFile says where source's lines are: hostd's log; the machine's
// console (kernel and agent, VM drivers); the agent's lines, which VM
// drivers write into the console (agentOnly: keep only its records) and
// the native driver into agent.log.
func LogFile(p config.Paths, source string) (path string, agentOnly bool, err error) {
	switch source {
	case "hostd":
		return HostdLog(p), false, nil
	case "console":
		return consoleLog(p.MachineDir()), false, nil
	case "agent":
		native := filepath.Join(p.MachineDir(), "agent.log")
		if _, err := os.Stat(native); err == nil {
			return native, false, nil
		}
		return consoleLog(p.MachineDir()), true, nil
	}
	return "", false, fmt.Errorf("unknown log %q (want hostd, agent or console)", source)
}

// isAgentLine tells the agent's records (log/slog text: time=…) from the
// kernel's messages in the console.
func isAgentLine(l []byte) bool { return bytes.HasPrefix(l, []byte("time=")) }

// tailScan bounds how much of a log's end is read to find its last lines.
const tailScan = 8 << 20

// TailLog writes the last tail lines of the log at path (all when tail <
// 0) to w, only the agent's when agentOnly; with follow it then writes new
// lines as they come until ctx ends, across rotations and truncations.
func TailLog(ctx context.Context, w io.Writer, path string, agentOnly bool, tail int, follow bool) error {
	keep := func(l []byte) bool { return !agentOnly || isAgentLine(l) }
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) && follow {
		f, err = waitOpen(ctx, path)
	}
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	off := max(fi.Size()-tailScan, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil && err != io.EOF {
		return err
	}
	pos := off + int64(len(data)) // the next byte to read when following
	if follow {
		// A last line without its end yet is written once it is whole.
		i := bytes.LastIndexByte(data, '\n')
		pos = off + int64(i+1)
		data = data[:i+1]
	}
	if off > 0 { // the scan began inside a line
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	var lines [][]byte
	for l := range bytes.Lines(data) {
		if keep(l) {
			lines = append(lines, l)
		}
	}
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return err
		}
	}
	flush()
	if !follow {
		return nil
	}

	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(f)
	var line []byte
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		chunk, err := br.ReadBytes('\n')
		pos += int64(len(chunk))
		line = append(line, chunk...)
		if err == nil {
			if keep(line) {
				if _, err := w.Write(line); err != nil {
					return err
				}
				flush()
			}
			line = line[:0]
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// A new file at path (rotated) or a shorter one (truncated): read
		// it from its start.
		cur, cerr := f.Stat()
		nfi, nerr := os.Stat(path)
		if cerr == nil && nerr == nil && (!os.SameFile(cur, nfi) || nfi.Size() < pos) {
			if nf, err := os.Open(path); err == nil {
				f.Close()
				f, pos, line = nf, 0, line[:0]
				br.Reset(f)
			}
		}
	}
}

// waitOpen opens path once it exists.
func waitOpen(ctx context.Context, path string) (*os.File, error) {
	for {
		f, err := os.Open(path)
		if !os.IsNotExist(err) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
