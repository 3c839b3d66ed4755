//go:build !windows

package setup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerTools: the shipped docker CLI and plugins are put to use only
// where the user has none, and removed without touching the user's.
func TestDockerTools(t *testing.T) {
	dir := t.TempDir()
	tools := filepath.Join(dir, "lib", "berth", "docker")
	os.MkdirAll(filepath.Join(tools, "cli-plugins"), 0o755)
	for _, f := range []string{"docker", "cli-plugins/docker-buildx", "cli-plugins/docker-compose"} {
		os.WriteFile(filepath.Join(tools, f), []byte("#!/bin/sh\necho berth's "+filepath.Base(f)+"\n"), 0o755)
	}
	berth := filepath.Join(dir, "bin", "berth")
	os.MkdirAll(filepath.Dir(berth), 0o755)
	os.WriteFile(berth, []byte("#!/bin/sh\n"), 0o755)
	if got := FindDockerTools(berth); got != tools {
		t.Fatalf("FindDockerTools: %q, want %s", got, tools)
	}

	userPlugins := filepath.Join(dir, "home", ".docker", "cli-plugins")
	system := filepath.Join(dir, "usr", "libexec", "docker", "cli-plugins")
	os.MkdirAll(system, 0o755)
	os.WriteFile(filepath.Join(system, "docker-compose"), []byte("the system's compose"), 0o755)
	links := []string{filepath.Join(dir, "ro", "docker"), filepath.Join(dir, "home", ".local", "bin", "docker")}
	os.MkdirAll(filepath.Dir(links[0]), 0o755)
	os.WriteFile(links[0], []byte("not a link"), 0o755)
	oldDirs, oldLinks := pluginDirs, dockerLinks
	pluginDirs = func() []string { return []string{userPlugins, system} }
	dockerLinks = func() []string { return links }
	t.Cleanup(func() { pluginDirs, dockerLinks = oldDirs, oldLinks })

	// No docker on PATH: Berth's is linked, buildx is added, the
	// system's compose is kept.
	t.Setenv("PATH", filepath.Join(dir, "empty"))
	notes, err := DockerTools(tools, false)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(links[1]); l != filepath.Join(tools, "docker") {
		t.Errorf("docker link: %q (%v)", l, notes)
	}
	if b, _ := os.ReadFile(links[0]); string(b) != "not a link" {
		t.Error("a file in the way was replaced")
	}
	if l, _ := os.Readlink(filepath.Join(userPlugins, "docker-buildx")); l != filepath.Join(tools, "cli-plugins", "docker-buildx") {
		t.Errorf("buildx plugin: %q", l)
	}
	if _, err := os.Lstat(filepath.Join(userPlugins, "docker-compose")); err == nil {
		t.Error("compose was added over the system's")
	}
	if !strings.Contains(strings.Join(notes, "\n"), "docker-compose: yours ("+filepath.Join(system, "docker-compose")+") is used") {
		t.Errorf("notes: %v", notes)
	}
	// Again: nothing changes.
	if _, err := DockerTools(tools, false); err != nil {
		t.Fatal(err)
	}

	// A docker the user has on PATH is used, not linked over.
	userBin := filepath.Join(dir, "userbin")
	os.MkdirAll(userBin, 0o755)
	os.WriteFile(filepath.Join(userBin, "docker"), []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("PATH", userBin)
	notes, _ = DockerTools(tools, false)
	if !strings.Contains(strings.Join(notes, "\n"), "docker: yours ("+filepath.Join(userBin, "docker")+") is used") {
		t.Errorf("with the user's docker: %v", notes)
	}

	// Remove takes only ours.
	if _, err := DockerTools(tools, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{links[1], filepath.Join(userPlugins, "docker-buildx")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left after remove", p)
		}
	}
	for _, p := range []string{links[0], filepath.Join(system, "docker-compose"), filepath.Join(userBin, "docker")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("remove took the user's %s", p)
		}
	}
}
