package setup

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// StartAtLogin writes or removes the XDG autostart entry that starts exe
// (the desktop app) hidden when the user logs in.
func StartAtLogin(exe string, on bool) error {
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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, autostartEntry(exe), 0o644)
}
