// Command package builds Berth's installers from what make built: the
// Debian package (installer/deb) and the Windows installer (installer/nsis).
// It is `make package`; macOS's .app and .dmg are made on a Mac by the
// scripts in installer/macos.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berth-dev/berth/installer/deb"
	"github.com/berth-dev/berth/installer/dockercli"
	"github.com/berth-dev/berth/installer/nsis"
)

func main() {
	var (
		version    = flag.String("version", "dev", "Berth's version (git describe)")
		bin        = flag.String("bin", "bin", "build output: berth, berth-desktop; windows/*.exe")
		guest      = flag.String("guest", "build/guest/out", "guest images, one dir per architecture")
		out        = flag.String("out", "dist", "where the installers go")
		arch       = flag.String("arch", runtime.GOARCH, "the .deb's architecture")
		only       = flag.String("only", "", "build only this one: deb or nsis")
		compressor = flag.String("nsis-compressor", "lzma", "NSIS compressor: lzma (smallest) or zlib (fastest)")
		cache      = flag.String("docker-cache", dockercli.DefaultCache(), "where the docker CLI and plugins are built (once per machine)")
	)
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
	// The docker CLI and its plugins, built from their modules at the
	// pinned versions (installer/dockercli), laid out per platform.
	tools := func(goos, goarch string) string {
		dir, err := os.MkdirTemp("", "berth-docker-")
		if err != nil {
			fail(err)
		}
		logf := func(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
		if err := dockercli.BuildAll(*cache, goos, goarch, dir, logf); err != nil {
			fail(err)
		}
		return dir
	}
	if *only == "" || *only == "deb" {
		t0 := time.Now()
		dt := tools("linux", *arch)
		defer os.RemoveAll(dt)
		p, err := deb.Build(deb.Options{Version: *version, Arch: *arch, Bin: *bin, Guest: filepath.Join(*guest, *arch),
			Icon: "build/appicon.png", Docker: dt, Out: *out})
		if err != nil {
			fail(err)
		}
		report(p, t0)
	}
	if *only == "" || *only == "nsis" {
		t0 := time.Now()
		dt := tools("windows", "amd64")
		defer os.RemoveAll(dt)
		o := nsis.Options{Version: *version, Bin: filepath.Join(*bin, "windows"),
			Guest: filepath.Join(*guest, "amd64"), Docker: dt, Out: *out, Compressor: *compressor}
		if ico := filepath.Join(o.Bin, "berth.ico"); exists(ico) {
			o.Icon, _ = filepath.Abs(ico)
		}
		p, err := nsis.Build(o)
		if err != nil {
			fail(err)
		}
		report(p, t0)
	}
}

func report(path string, t0 time.Time) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	fmt.Printf("%s: %.1f MiB in %v\n", path, float64(fi.Size())/(1<<20), time.Since(t0).Round(100*time.Millisecond))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
