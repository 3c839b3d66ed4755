//go:build !linux && !darwin && !windows

package setup

import "errors"

// StartAtLogin is not supported here.
func StartAtLogin(exe string, on bool) error {
	if on {
		return errors.New("start at login is not supported on this platform")
	}
	return nil
}
