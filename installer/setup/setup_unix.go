//go:build !windows

package setup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// CLIOnPath makes `berth` (exe) runnable from a shell: nothing if PATH
// already finds exe there (the .deb's /usr/bin), else a link in
// /usr/local/bin when it is writable (macOS), else in ~/.local/bin (on
// PATH in Debian's and most shells' default profiles). It returns where
// berth is found.
func CLIOnPath(exe string, remove bool) (string, error) {
	exe, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return "", err
	}
	home, _ := os.UserHomeDir()
	return cliOnPath(exe, []string{"/usr/local/bin/berth", filepath.Join(home, ".local", "bin", "berth")}, remove)
}

func cliOnPath(exe string, links []string, remove bool) (string, error) {
	if remove {
		for _, l := range links {
			if err := unlinkCLI(exe, l); err != nil {
				return "", err
			}
		}
		return "", nil
	}
	if p, err := exec.LookPath("berth"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil && r == exe {
			return p, nil
		}
	}
	var errs []error
	for _, l := range links {
		if err := linkCLI(exe, l); err != nil {
			errs = append(errs, err)
			continue
		}
		return l, nil
	}
	return "", fmt.Errorf("put berth on PATH: %v", errs)
}

// dockerOnPath links the shipped docker CLI where berth's own link would
// go (/usr/local/bin, else ~/.local/bin), never over a file that is not a
// link; remove takes away such links to exe.
func dockerOnPath(exe string, remove bool) error {
	links := dockerLinks()
	if remove {
		for _, l := range links {
			if err := unlinkCLI(exe, l); err != nil {
				return err
			}
		}
		return nil
	}
	var errs []error
	for _, l := range links {
		if err := linkCLI(exe, l); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("put docker on PATH: %v", errs)
}

// dockerLinks are where docker's link may go, in order. A variable for
// tests.
var dockerLinks = func() []string {
	home, _ := os.UserHomeDir()
	return []string{"/usr/local/bin/docker", filepath.Join(home, ".local", "bin", "docker")}
}
