//go:build linux

package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mountOverlay mounts overlayfs at target with option string data, whose
// paths are relative to dir. mount(2) copies at most one page of options,
// and absolute layer paths would overflow it with a few dozen layers, so the
// mount runs on a thread of its own whose working directory (unshared from
// the rest of the process with CLONE_FS) is dir. The thread is never handed
// back to the Go scheduler: it exits with the goroutine.
func mountOverlay(dir, target, data string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread's fs context is private now
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("overlay", target, "overlay", 0, data)
	}()
	return <-errc
}

// isMountPoint reports whether p is itself a mount point.
func isMountPoint(p string) (bool, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return false, err
	}
	if _, err := os.Lstat(abs); err != nil {
		return false, nil
	}
	return mountinfo.Mounted(abs)
}
