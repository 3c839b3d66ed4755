// Package setup is Berth's first-run setup, shared by the installers and
// `berth setup`: the CLI on PATH, the `berth` docker context, and the
// desktop app started (hidden, tray only) at login: an XDG autostart entry
// on Linux, a LaunchAgent on macOS, the Run key on Windows. Each step can
// be undone (an uninstaller runs `berth setup --remove`).
package setup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent"
)

// LoginArg is the flag the desktop app is started with at login: only the
// tray icon shows.
const LoginArg = "--hidden"

// DockerContext writes (or, with remove, deletes) the `berth` docker
// context for the machine at p, leaving the user's current context alone.
func DockerContext(p config.Paths, remove bool) error {
	dir := hostagent.DockerConfigDir()
	if dir == "" {
		return errors.New("docker context: no home directory for the docker CLI's config")
	}
	name := hostagent.ContextName(p)
	if remove {
		return hostagent.RemoveDockerContext(dir, name)
	}
	return hostagent.WriteDockerContext(dir, name, p.DockerHost())
}

// pathListAdd returns list (PATH's value, entries separated by sep) with
// dir first, and whether it had to be added.
func pathListAdd(list, dir string, sep string, same func(a, b string) bool) (string, bool) {
	for _, e := range strings.Split(list, sep) {
		if e != "" && same(filepath.Clean(e), filepath.Clean(dir)) {
			return list, false
		}
	}
	if list == "" {
		return dir, true
	}
	return dir + sep + list, true
}

// pathListRemove returns list without dir.
func pathListRemove(list, dir string, sep string, same func(a, b string) bool) (string, bool) {
	var keep []string
	removed := false
	for _, e := range strings.Split(list, sep) {
		if e != "" && same(filepath.Clean(e), filepath.Clean(dir)) {
			removed = true
			continue
		}
		keep = append(keep, e)
	}
	return strings.Join(keep, sep), removed
}

// linkCLI makes link point at exe, replacing an older link of ours but
// never a file that is not a symlink.
func linkCLI(exe, link string) error {
	if fi, err := os.Lstat(link); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and is not a link: left alone", link)
		}
		if cur, _ := os.Readlink(link); cur == exe {
			return nil
		}
		if err := os.Remove(link); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	return os.Symlink(exe, link)
}

// unlinkCLI removes link if it is a symlink to exe.
func unlinkCLI(exe, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == exe {
		return os.Remove(link)
	}
	return nil
}
