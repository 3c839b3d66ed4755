package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"sort"
)

// wslConf configures the WSL distro the Windows driver (vm/wsl) imports:
// root by default, no systemd, no Windows programs run from inside it and
// no Windows PATH (the engine's containers must not see either), WSL's
// own resolv.conf and hosts.
const wslConf = `[boot]
systemd = false

[automount]
enabled = true
mountFsTab = false

[network]
generateHosts = true
generateResolvConf = true
hostname = berth

[interop]
enabled = false
appendWindowsPath = false

[user]
default = root
`

// writeWSLRootfs writes the root filesystem WSL imports as the Berth
// distro: busybox, Berth's binaries (bins: name → file; berth-agent and
// what it starts, next to it in /usr/local/bin) and the few files WSL and
// the engine read. WSL brings its own kernel and /init, so no modules or
// mke2fs. It is reproducible: sorted, owned by root, dated 0.
func writeWSLRootfs(path, busybox string, bins map[string]string) error {
	type entry struct {
		mode int64
		body []byte
		link string
		dir  bool
	}
	files := map[string]entry{
		"etc/wsl.conf":           {mode: 0o644, body: []byte(wslConf)},
		"etc/passwd":             {mode: 0o644, body: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		"etc/group":              {mode: 0o644, body: []byte("root:x:0:\n")},
		"bin/sh":                 {mode: 0o777, link: "busybox"},
		"usr/share/berth/README": {mode: 0o644, body: []byte("The Berth engine's WSL distro: berth-agent runs here, started by Berth on Windows.\n")},
		"var/lib/berth/.keep":    {mode: 0o644},
		"root/.keep":             {mode: 0o644},
		"tmp/.keep":              {mode: 0o644},
		"bin/busybox":            {mode: 0o755},
	}
	srcs := map[string]string{"bin/busybox": busybox}
	for name, src := range bins {
		files["usr/local/bin/"+name] = entry{mode: 0o755}
		srcs["usr/local/bin/"+name] = src
	}
	for name, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("wsl rootfs: %w", err)
		}
		e := files[name]
		e.body = b
		files[name] = e
	}
	for _, d := range []string{"bin", "dev", "etc", "mnt", "proc", "root", "run", "sys", "tmp", "usr", "usr/local", "usr/local/bin", "usr/share", "usr/share/berth", "var", "var/lib", "var/lib/berth"} {
		files[d] = entry{mode: 0o755, dir: true}
	}
	files["tmp"] = entry{mode: 0o1777, dir: true}
	files["root"] = entry{mode: 0o700, dir: true}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // no name, no timestamp
	tw := tar.NewWriter(zw)
	for _, n := range names {
		e := files[n]
		h := &tar.Header{Name: n, Mode: e.mode, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, n+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return writeFile(path, buf.Bytes())
}
