// Package deb builds Berth's Debian package with nfpm (as a library): the
// CLI (which is also the host agent), the desktop window, the guest image,
// a desktop entry, the icon, the CLI's shell completions, and the docker
// CLI with its buildx and compose plugins. Everything per user (the docker
// context, start at login) is set up by Berth at first run. The only
// maintainer scripts register the docker CLI and plugins as alternatives
// (/usr/bin/docker, /usr/libexec/docker/cli-plugins/…), which never
// replace a file another package put there: a docker CLI the user has
// stays theirs.
package deb

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

// Options say what goes in.
type Options struct {
	Version string // Berth's version (git describe); made a valid Debian version
	Arch    string // Debian architecture: amd64, arm64
	Bin     string // dir with berth and berth-desktop (Linux, this Arch)
	Guest   string // dir with vmlinuz, initrd.img and system.img (make guest) for Arch
	Icon    string // 256×256 PNG
	// Docker is a directory with the docker CLI and cli-plugins/ for
	// Arch (installer/dockercli.BuildAll).
	Docker string
	Out    string // directory for the .deb
	// MTime dates every file (reproducible builds); default the Unix epoch.
	MTime time.Time
}

// Depends are what Berth needs at run time on Debian 12: QEMU for the VM
// (its -common package brings virtiofsd for shared folders, -data the
// qboot firmware) and the libraries berth-desktop links (WebKitGTK 4.1,
// GTK 3). berth itself is static.
func Depends(arch string) []string {
	qemu := map[string]string{"amd64": "qemu-system-x86", "arm64": "qemu-system-arm"}[arch]
	return []string{qemu, "libwebkit2gtk-4.1-0", "libgtk-3-0", "libc6"}
}

// DesktopEntry is /usr/share/applications/berth.desktop.
const DesktopEntry = `[Desktop Entry]
Type=Application
Name=Berth
GenericName=Containers
Comment=Linux containers in a small VM, for the docker CLI
Exec=berth-desktop
Icon=berth
Terminal=false
Categories=Development;System;
Keywords=docker;container;vm;
`

var debVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// DebianVersion turns `git describe` output into a Debian version: a tag
// v1.2.3-4-gabc becomes 1.2.3+4.gabc; a bare hash 0~gHASH (sorts before
// any release).
func DebianVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	dirty := strings.HasSuffix(v, "-dirty")
	v = strings.TrimSuffix(v, "-dirty")
	if m := regexp.MustCompile(`^([0-9][0-9.]*)-([0-9]+)-(g[0-9a-f]+)$`).FindStringSubmatch(v); m != nil {
		v = m[1] + "+" + m[2] + "." + m[3]
	} else if regexp.MustCompile(`^[0-9a-f]{7,40}$`).MatchString(v) || !debVersionRE.MatchString(v) {
		v = "0~g" + regexp.MustCompile(`[^A-Za-z0-9.]`).ReplaceAllString(v, "")
	}
	if dirty {
		v += "+dirty"
	}
	return v
}

// Build writes the package and returns its path.
func Build(o Options) (string, error) {
	if o.Arch == "" {
		return "", fmt.Errorf("deb: no architecture")
	}
	version := DebianVersion(o.Version)
	type file struct {
		src, dst string
		mode     os.FileMode
	}
	fs := []file{
		{filepath.Join(o.Bin, "berth"), "/usr/bin/berth", 0o755},
		{filepath.Join(o.Bin, "berth-desktop"), "/usr/bin/berth-desktop", 0o755},
		{filepath.Join(o.Guest, "vmlinuz"), "/usr/share/berth/guest/" + o.Arch + "/vmlinuz", 0o644},
		{filepath.Join(o.Guest, "initrd.img"), "/usr/share/berth/guest/" + o.Arch + "/initrd.img", 0o644},
		{filepath.Join(o.Guest, "system.img"), "/usr/share/berth/guest/" + o.Arch + "/system.img", 0o644},
		{o.Icon, "/usr/share/icons/hicolor/256x256/apps/berth.png", 0o644},
		{filepath.Join(o.Docker, "docker"), DockerDir + "/docker", 0o755},
		{filepath.Join(o.Docker, "cli-plugins", "docker-buildx"), DockerDir + "/cli-plugins/docker-buildx", 0o755},
		{filepath.Join(o.Docker, "cli-plugins", "docker-compose"), DockerDir + "/cli-plugins/docker-compose", 0o755},
	}
	tmp, err := os.MkdirTemp("", "berth-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	generated := map[string]string{
		"/usr/share/applications/berth.desktop": DesktopEntry,
		"/usr/share/doc/berth/copyright": "Berth\n\nSee https://berth.dev for the source and its licence.\n" +
			"The guest image carries Debian's linux-image-cloud, e2fsprogs, libc6 and busybox-static; their\n" +
			"copyright files are in the Debian packages named in /usr/share/berth/guest/*/manifest.json.\n" +
			"The docker CLI, docker-buildx and docker-compose in " + DockerDir + " are built from their\n" +
			"sources (github.com/docker/cli, github.com/docker/buildx, github.com/docker/compose; Apache-2.0).\n",
	}
	for dst, shell := range completionFiles {
		var b strings.Builder
		if err := Completion(shell, &b); err != nil {
			return "", err
		}
		generated[dst] = b.String()
	}
	// Optional: the manifest, and (x86) the uncompressed kernel QEMU boots
	// faster (hostd prefers it when it is there).
	for _, name := range []string{"manifest.json", "vmlinux"} {
		if p := filepath.Join(o.Guest, name); exists(p) {
			fs = append(fs, file{p, "/usr/share/berth/guest/" + o.Arch + "/" + name, 0o644})
		}
	}
	for dst, body := range generated {
		src := filepath.Join(tmp, strings.ReplaceAll(strings.TrimPrefix(dst, "/"), "/", "_"))
		if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
			return "", err
		}
		fs = append(fs, file{src, dst, 0o644})
	}
	mtime := o.MTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0).UTC()
	}
	var contents files.Contents
	for _, f := range fs {
		if !exists(f.src) {
			return "", fmt.Errorf("deb: %s is missing (make build desktop guest)", f.src)
		}
		contents = append(contents, &files.Content{Source: f.src, Destination: f.dst,
			FileInfo: &files.ContentFileInfo{Mode: f.mode, Owner: "root", Group: "root", MTime: mtime}})
	}
	// The plugins' alternatives live in Docker's own plugin directory,
	// which may not exist yet.
	contents = append(contents, &files.Content{Destination: "/usr/libexec/docker/cli-plugins", Type: files.TypeDir,
		FileInfo: &files.ContentFileInfo{Mode: 0o755, Owner: "root", Group: "root", MTime: mtime}})
	scripts := map[string]string{"postinst": PostInst, "prerm": PreRm}
	for name, body := range scripts {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return "", err
		}
		scripts[name] = p
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "berth",
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "devel",
		Priority:      "optional",
		Maintainer:    "Berth <eng@berth.dev>",
		Homepage:      "https://berth.dev",
		License:       "Apache-2.0",
		Description: "Linux containers in a small VM, for the docker CLI\n" +
			"Berth runs a small Linux VM whose engine serves the Docker Engine API, so\n" +
			"the docker CLI, Compose and Testcontainers work against it. It brings the\n" +
			"berth CLI, a desktop window with a tray menu, the VM's guest image, and the\n" +
			"docker CLI with the buildx and compose plugins (where none is installed).",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends:  Depends(o.Arch),
			Contents: contents,
			Scripts:  nfpm.Scripts{PostInstall: scripts["postinst"], PreRemove: scripts["prerm"]},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("deb: %w", err)
	}
	pkger, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, pkger.ConventionalFileName(info))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	if err := pkger.Package(info, f); err != nil {
		f.Close()
		os.Remove(path + ".tmp")
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
