package setup

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// StartAtLogin writes or removes the LaunchAgent that starts exe (the
// desktop app's binary in Berth.app) hidden when the user logs in; launchd
// reads it at the next login.
func StartAtLogin(exe string, on bool) error {
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	path := filepath.Join(home, "Library", "LaunchAgents", launchAgentLabel+".plist")
	if !on {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, launchAgent(exe), 0o644)
}
