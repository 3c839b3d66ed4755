//go:build !linux

package desktop

import "errors"

func totalMemory() uint64 { return 0 }

// setStartAtLogin: the macOS login item and the Windows Run key come with
// those platforms' installers.
func setStartAtLogin(on bool) error {
	if on {
		return errors.New("start at login is not supported on this platform yet")
	}
	return nil
}
