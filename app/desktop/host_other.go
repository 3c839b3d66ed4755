//go:build !linux

package desktop

import (
	"os"

	"github.com/berth-dev/berth/installer/setup"
)

func totalMemory() uint64 { return 0 }

// setStartAtLogin writes or removes the login item (installer/setup: a
// LaunchAgent on macOS, the Run key on Windows) that starts this window
// hidden (tray only) when the user logs in.
func setStartAtLogin(on bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return setup.StartAtLogin(exe, on)
}
