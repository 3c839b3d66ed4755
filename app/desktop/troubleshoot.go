package desktop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// Troubleshoot is the Troubleshoot view's service: the host agent's and
// engine's logs, a restart, a reset.
type Troubleshoot struct{ b *Backend }

// LogSources are the logs the view offers (hostapi's /logs sources).
var LogSources = []string{"hostd", "agent", "console"}

// Diagnostics is the summary at the top of the view.
type Diagnostics struct {
	Home       string `json:"home"`
	DockerHost string `json:"dockerHost"`
	HostdSock  string `json:"hostdSocket"`
	Hostd      bool   `json:"hostd"`
	LogsDir    string `json:"logsDir"`
	Engine     string `json:"engine"` // version, or why it does not answer
}

// Diagnostics reports where things are and what answers.
func (t *Troubleshoot) Diagnostics() Diagnostics {
	b := t.b
	ms := b.refreshMachine(b.ctx)
	d := Diagnostics{Home: b.paths.Home, DockerHost: b.dockerHost, HostdSock: b.paths.HostdSocket(),
		Hostd: ms.Hostd, LogsDir: b.paths.LogsDir(), Engine: "not answering"}
	if ms.Engine.Answering {
		d.Engine = ms.Engine.Version + " (API " + ms.Engine.APIVersion + ")"
	}
	return d
}

// maxLogBytes bounds what one Logs call returns to the window.
const maxLogBytes = 1 << 20

// Logs returns the last tail lines of source (hostd, agent or console):
// from hostd when it runs, else from its file under the logs folder.
func (t *Troubleshoot) Logs(source string, tail int) (string, error) {
	if !contains(LogSources, source) {
		return "", fmt.Errorf("unknown log %q (want one of %s)", source, strings.Join(LogSources, ", "))
	}
	if tail <= 0 || tail > 10000 {
		tail = 500
	}
	b := t.b
	ctx, cancel := b.opCtx(15 * time.Second)
	defer cancel()
	rc, err := b.hostd.Logs(ctx, source, tail, false)
	if err == nil {
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, maxLogBytes))
		if err != nil {
			return "", fmt.Errorf("read the %s log: %w", source, err)
		}
		return string(data), nil
	}
	if !errors.Is(err, hostapi.ErrNotRunning) {
		return "", fmt.Errorf("read the %s log: %w", source, err)
	}
	// No hostd: the file it (or `make up`) leaves behind, if any.
	path := filepath.Join(b.paths.LogsDir(), source+".log")
	data, err := readTail(path, tail)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("the host agent is not running and there is no %s", path)
	}
	return data, err
}

// RestartMachine restarts the VM (and with it the engine).
func (t *Troubleshoot) RestartMachine() (MachineStatus, error) { return (&Machine{t.b}).Restart() }

// ResetSettings puts every setting back to its default.
func (t *Troubleshoot) ResetSettings() (SaveResult, error) { return (&Settings{t.b}).Reset() }

// readTail returns the last n lines of a file, reading at most 1 MiB.
func readTail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(fi.Size()-maxLogBytes, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil && err != io.EOF {
		return "", err
	}
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))) + "\n", nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
