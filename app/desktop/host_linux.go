package desktop

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/installer/setup"
)

func totalMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// setStartAtLogin writes or removes the login item (installer/setup) that
// starts this window hidden (tray only) when the user logs in.
func setStartAtLogin(on bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return setup.StartAtLogin(exe, on)
}
