//go:build linux

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// lockRoot takes the state root for this engine alone: an exclusive flock
// on ROOT/engine.lock, held until the file is closed (or the process
// ends), with this process's PID in it. It is taken before anything is
// restored: a second engine on the same root must not kill the first's
// containers, nor touch its networks, on its way to failing.
func lockRoot(root string) (*os.File, error) {
	p := filepath.Join(root, "engine.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("engine: lock the state root: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := os.ReadFile(p)
			who := "another engine"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				who = "PID " + strconv.Itoa(pid)
			}
			return nil, errdefs.Conflict("engine: state root %s in use by %s", root, who)
		}
		return nil, fmt.Errorf("engine: lock the state root: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("engine: lock the state root: %w", err)
		}
	}
	return f, nil
}
