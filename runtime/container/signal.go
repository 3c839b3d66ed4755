//go:build linux

package container

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// ParseSignal reads a signal as docker accepts it: a number, or a name with
// or without the SIG prefix ("TERM", "SIGTERM", "sigkill"). Empty gives def.
func ParseSignal(s string, def unix.Signal) (unix.Signal, error) {
	if s == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidArgument("Invalid signal: %s", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidArgument("Invalid signal: %s", s)
}
