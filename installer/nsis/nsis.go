// Package nsis builds Berth's Windows installer with NSIS's makensis
// (Debian's nsis package) from berth.nsi: it stages the install tree and
// passes the version.
package nsis

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

//go:embed berth.nsi
var script []byte

// Options say what goes in.
type Options struct {
	Version string // Berth's version (git describe)
	Bin     string // dir with berth.exe and berth-desktop.exe (make cross)
	Guest   string // dir with vmlinuz, initrd.img, system.img, wsl-rootfs.tar.gz, manifest.json (make guest, amd64)
	Icon    string // .ico for the installer (optional)
	// Docker holds docker.exe and cli-plugins/ for windows/amd64
	// (installer/dockercli.BuildAll).
	Docker string
	Out    string // directory for the installer
	// Compressor is NSIS's: "lzma" (default, smallest), "zlib" (fastest:
	// tests).
	Compressor string
}

// FileVersion is VERSION as Windows' N.N.N.N (VIProductVersion): the
// leading numbers of a tag, else 0.0.0.0.
func FileVersion(v string) string {
	m := regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?`).FindStringSubmatch(v)
	parts := []string{"0", "0", "0", "0"}
	for i := 1; m != nil && i < len(m); i++ {
		if m[i] != "" {
			parts[i-1] = m[i]
		}
	}
	return strings.Join(parts, ".")
}

// Build runs makensis and returns the installer's path.
func Build(o Options) (string, error) {
	makensis, err := exec.LookPath("makensis")
	if err != nil {
		return "", fmt.Errorf("nsis: makensis not found (Debian: nsis): %w", err)
	}
	stage, err := os.MkdirTemp("", "berth-nsis-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	copies := map[string]string{
		filepath.Join(o.Bin, "berth.exe"):                            "bin/berth.exe",
		filepath.Join(o.Bin, "berth-desktop.exe"):                    "bin/berth-desktop.exe",
		filepath.Join(o.Guest, "vmlinuz"):                            "share/berth/guest/amd64/vmlinuz",
		filepath.Join(o.Guest, "initrd.img"):                         "share/berth/guest/amd64/initrd.img",
		filepath.Join(o.Guest, "system.img"):                         "share/berth/guest/amd64/system.img",
		filepath.Join(o.Guest, "wsl-rootfs.tar.gz"):                  "share/berth/guest/amd64/wsl-rootfs.tar.gz",
		filepath.Join(o.Guest, "manifest.json"):                      "share/berth/guest/amd64/manifest.json",
		filepath.Join(o.Docker, "docker.exe"):                        "docker/docker.exe",
		filepath.Join(o.Docker, "cli-plugins", "docker-buildx.exe"):  "docker/cli-plugins/docker-buildx.exe",
		filepath.Join(o.Docker, "cli-plugins", "docker-compose.exe"): "docker/cli-plugins/docker-compose.exe",
	}
	// The uncompressed x86 kernel QEMU boots faster, when make guest made it.
	if v := filepath.Join(o.Guest, "vmlinux"); exists(v) {
		copies[v] = "share/berth/guest/amd64/vmlinux"
	}
	for src, dst := range copies {
		if err := link(src, filepath.Join(stage, dst)); err != nil {
			return "", fmt.Errorf("nsis: %w (make cross guest)", err)
		}
	}
	nsi := filepath.Join(stage, "berth.nsi")
	if err := os.WriteFile(nsi, script, 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	out, err := filepath.Abs(filepath.Join(o.Out, "berth-"+strings.TrimPrefix(o.Version, "v")+"-setup.exe"))
	if err != nil {
		return "", err
	}
	args := []string{"-V2", "-NOCD", "-DVERSION=" + o.Version, "-DVIVERSION=" + FileVersion(o.Version),
		"-DSRC=" + stage, "-DOUTFILE=" + out + ".tmp"}
	if o.Compressor != "" {
		args = append(args, "-DCOMPRESSOR="+o.Compressor)
	}
	if o.Icon != "" {
		args = append(args, "-DICON="+o.Icon)
	}
	cmd := exec.Command(makensis, append(args, nsi)...)
	cmd.Dir = stage
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(out + ".tmp")
		return "", fmt.Errorf("makensis: %v\n%s", err, b)
	}
	return out, os.Rename(out+".tmp", out)
}

// link hard-links src to dst (copying across filesystems).
func link(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
