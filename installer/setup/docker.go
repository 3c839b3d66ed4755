package setup

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/berth-dev/berth/app/hostagent"
)

// The docker CLI and plugins Berth ships (installer/dockercli) sit in a
// directory next to the berth binary: ../lib/berth/docker (the .deb, which
// also registers them as alternatives), ../docker (Windows) or
// ../Resources/docker (the macOS bundle).
var dockerDirs = []string{"../lib/berth/docker", "../docker", "../Resources/docker"}

// FindDockerTools returns the directory of the docker CLI and plugins
// shipped with the berth binary exe, or "".
func FindDockerTools(exe string) string {
	for _, d := range dockerDirs {
		dir := filepath.Join(filepath.Dir(exe), filepath.FromSlash(d))
		if _, err := os.Stat(filepath.Join(dir, exeName("docker"))); err == nil {
			return dir
		}
	}
	return ""
}

func exeName(n string) string {
	if runtime.GOOS == "windows" {
		return n + ".exe"
	}
	return n
}

// pluginDirs are the directories the docker CLI looks for plugins in, the
// user's first (cli-plugins/manager's order). A variable for tests.
var pluginDirs = func() []string {
	dirs := []string{filepath.Join(hostagent.DockerConfigDir(), "cli-plugins")}
	if runtime.GOOS == "windows" {
		return append(dirs, filepath.Join(os.Getenv("ProgramData"), "Docker", "cli-plugins"),
			filepath.Join(os.Getenv("ProgramFiles"), "Docker", "cli-plugins"))
	}
	return append(dirs, "/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
		"/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
}

// DockerTools makes the shipped docker CLI and plugins (in dir) usable
// where the user has none, and says what it did: docker goes on PATH only
// if no docker is found there; a plugin goes into the user's plugin
// directory only if no directory the CLI searches has one of that name.
// Nothing of the user's is replaced; remove takes away only what points at
// (or, for a copy, is the same as) dir's files.
func DockerTools(dir string, remove bool) ([]string, error) {
	var notes []string
	cli := filepath.Join(dir, exeName("docker"))
	if remove {
		if err := dockerOnPath(cli, true); err != nil {
			return nil, err
		}
	} else if p, err := exec.LookPath("docker"); err == nil && !same(p, cli) {
		notes = append(notes, fmt.Sprintf("docker: yours (%s) is used", p))
	} else if err := dockerOnPath(cli, false); err != nil {
		return nil, err
	} else {
		notes = append(notes, "docker: Berth's docker CLI is on PATH")
	}
	userDir := pluginDirs()[0]
	for _, name := range []string{"docker-buildx", "docker-compose"} {
		ours := filepath.Join(dir, "cli-plugins", exeName(name))
		dst := filepath.Join(userDir, exeName(name))
		if remove {
			if same(dst, ours) {
				if err := os.Remove(dst); err != nil {
					return nil, err
				}
			}
			continue
		}
		found := ""
		for _, d := range pluginDirs() {
			if p := filepath.Join(d, exeName(name)); exists(p) {
				found = p
				break
			}
		}
		switch {
		case found != "" && same(found, ours):
			notes = append(notes, name+": Berth's")
		case found != "":
			notes = append(notes, fmt.Sprintf("%s: yours (%s) is used", name, found))
		default:
			if err := placePlugin(ours, dst); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			notes = append(notes, fmt.Sprintf("%s: Berth's, in %s", name, userDir))
		}
	}
	return notes, nil
}

// placePlugin links (or, on Windows, where links need a privilege, copies)
// a plugin into the user's plugin directory.
func placePlugin(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if runtime.GOOS != "windows" {
		return os.Symlink(src, dst)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// same reports whether p is ours: a link to it, the file itself, or (a
// Windows copy) a file with the same content.
func same(p, ours string) bool {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		if o, err := filepath.EvalSymlinks(ours); err == nil && r == o {
			return true
		}
	}
	if runtime.GOOS != "windows" {
		return false
	}
	a, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	b, err := os.ReadFile(ours)
	return err == nil && bytes.Equal(a, b)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
