package wsl

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// Paths inside the distro.
const (
	agentPath  = "/usr/local/bin/berth-agent"
	busybox    = "/bin/busybox"
	pidFile    = "/run/berth-agent.pid"
	engineRoot = "/var/lib/berth"
)

var distroNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// distroName is the WSL distro of machine name: "berth" for the default
// machine, "berth-NAME" for others.
func distroName(name string) (string, error) {
	d := "berth"
	if name != "" && name != "berth" {
		d = "berth-" + name
	}
	if !distroNameRE.MatchString(d) {
		return "", fmt.Errorf("machine name %q cannot name a WSL distro", name)
	}
	return d, nil
}

// decode turns wsl.exe's output into text: without WSL_UTF8=1 (older
// WSL) its own messages are UTF-16LE; a Linux command's output is UTF-8.
func decode(b []byte) string {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		b = b[2:]
	} else if bytes.IndexByte(b, 0) < 0 {
		return string(b)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// parseList reads the names printed by `wsl --list --quiet`.
func parseList(out []byte) []string {
	var names []string
	for _, l := range strings.Split(decode(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	return names
}

// drvfsPath is where WSL mounts a Windows path (C:\Users\me → /mnt/c/Users/me).
func drvfsPath(win string) (string, error) {
	if len(win) < 3 || win[1] != ':' || (win[2] != '\\' && win[2] != '/') {
		return "", fmt.Errorf("%q is not an absolute Windows path with a drive letter", win)
	}
	drive := strings.ToLower(win[:1])
	if drive[0] < 'a' || drive[0] > 'z' {
		return "", fmt.Errorf("%q: bad drive letter", win)
	}
	return "/mnt/" + drive + "/" + strings.ReplaceAll(win[3:], `\`, "/"), nil
}

// shellQuote quotes s for busybox sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// agentScript runs berth-agent in the distro, serving the Engine API on
// the distro's loopback at port (relayed by WSL to Windows' loopback, where
// every local user can connect: each connection must present the token the
// driver writes on the agent's stdin); its PID is kept so Stop can ask it
// to shut down.
func agentScript(port int, engineArgs []string) string {
	args := []string{agentPath, "--root", engineRoot, "--host", "tcp://127.0.0.1:" + strconv.Itoa(port), "--cgroup-parent", "/berth", "--auth-token-stdin"}
	args = append(args, engineArgs...)
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return "mkdir -p /run && echo $$ > " + pidFile + " && exec " + strings.Join(q, " ")
}

// updateScript copies a new berth-agent from a Windows path into the
// distro, atomically, unless it is the same.
func updateScript(src string) string {
	s := shellQuote(src)
	return fmt.Sprintf("cmp -s %s %s || { cp %s %s.new && chmod 755 %s.new && mv %s.new %s; }",
		s, agentPath, s, agentPath, agentPath, agentPath, agentPath)
}

// extractAgent copies berth-agent out of the rootfs tar (gzip'd or not).
func extractAgent(rootfs, dst string) error {
	f, err := os.Open(rootfs)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	head := make([]byte, 2)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("%s: %w", rootfs, err)
	}
	f.Seek(0, io.SeekStart)
	if bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", rootfs, err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	want := strings.TrimPrefix(agentPath, "/")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no %s", rootfs, agentPath)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rootfs, err)
		}
		if strings.TrimPrefix(h.Name, "./") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 512<<20))
		if err != nil {
			return fmt.Errorf("%s: %w", rootfs, err)
		}
		return fsutil.WriteFileAtomic(dst, b, 0o755)
	}
}
