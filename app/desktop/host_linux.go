package desktop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/fsutil"
)

func totalMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// setStartAtLogin writes or removes the XDG autostart entry that starts
// the window hidden (tray only) when the user logs in.
func setStartAtLogin(on bool) error {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		dir = filepath.Join(home, ".config")
	}
	path := filepath.Join(dir, "autostart", "berth.desktop")
	if !on {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	entry := fmt.Sprintf("[Desktop Entry]\nType=Application\nName=Berth\nComment=Linux containers in a small VM\nExec=%s --hidden\nIcon=berth\nX-GNOME-Autostart-enabled=true\n",
		strings.ReplaceAll(exe, " ", `\s`))
	return fsutil.WriteFileAtomic(path, []byte(entry), 0o644)
}
