//go:build linux

package volume

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// The local driver's options, as dockerd's: a volume made with type, device
// and o (`docker volume create --opt type=tmpfs --opt device=tmpfs --opt
// o=size=100m`, an NFS share, `type=none,o=bind` over a host directory) is
// mounted on its _data directory while containers use it, and unmounted
// when the last one stops, as dockerd's local driver does.

var validOptions = map[string]bool{"type": true, "device": true, "o": true}

// checkOptions validates a create's driver options.
func checkOptions(opts map[string]string) error {
	for k := range opts {
		if !validOptions[k] {
			return errdefs.InvalidArgument("invalid option key: %q", k)
		}
	}
	if len(opts) == 0 {
		return nil
	}
	for _, k := range []string{"type", "device"} {
		if opts[k] == "" {
			return errdefs.InvalidArgument("missing required option: %q", k)
		}
	}
	if _, _, err := mountFlags(opts["o"]); err != nil {
		return err
	}
	return nil
}

// mountFlags splits o into mount flags and the data the filesystem reads.
func mountFlags(o string) (uintptr, string, error) {
	flags := map[string]struct {
		set   bool
		value uintptr
	}{
		"ro": {true, unix.MS_RDONLY}, "rw": {false, unix.MS_RDONLY}, "nosuid": {true, unix.MS_NOSUID}, "suid": {false, unix.MS_NOSUID},
		"nodev": {true, unix.MS_NODEV}, "dev": {false, unix.MS_NODEV}, "noexec": {true, unix.MS_NOEXEC}, "exec": {false, unix.MS_NOEXEC},
		"sync": {true, unix.MS_SYNCHRONOUS}, "async": {false, unix.MS_SYNCHRONOUS}, "dirsync": {true, unix.MS_DIRSYNC},
		"noatime": {true, unix.MS_NOATIME}, "atime": {false, unix.MS_NOATIME}, "nodiratime": {true, unix.MS_NODIRATIME},
		"relatime": {true, unix.MS_RELATIME}, "strictatime": {true, unix.MS_STRICTATIME},
		"bind": {true, unix.MS_BIND}, "rbind": {true, unix.MS_BIND | unix.MS_REC},
	}
	var f uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if fl, ok := flags[opt]; ok {
			if fl.set {
				f |= fl.value
			} else {
				f &^= fl.value
			}
			continue
		}
		if k, _, _ := strings.Cut(opt, "="); k == "remount" || k == "move" {
			return 0, "", errdefs.InvalidArgument("mount option %q is not allowed for a volume", opt)
		}
		data = append(data, opt)
	}
	return f, strings.Join(data, ","), nil
}

// Mount makes the volume's content available at its path for one more
// user and returns that path: a volume with mount options is mounted by
// its first user.
func (s *Store) Mount(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vols[name]
	if !ok {
		return "", errdefs.NotFound("get %s: no such volume", name)
	}
	p := s.Path(name)
	if m.Options["device"] == "" {
		return p, nil
	}
	if s.mounted[name] > 0 {
		s.mounted[name]++
		return p, nil
	}
	if err := mountDevice(m.Options, p); err != nil {
		return "", errdefs.As(errdefs.KindUnknown, fmt.Errorf("error while mounting volume '%s': %w", p, err))
	}
	if s.mounted == nil {
		s.mounted = map[string]int{}
	}
	s.mounted[name] = 1
	return p, nil
}

// Unmount releases one user of the volume; the last one unmounts it.
func (s *Store) Unmount(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mounted[name] == 0 {
		return
	}
	s.mounted[name]--
	if s.mounted[name] > 0 {
		return
	}
	delete(s.mounted, name)
	if err := unix.Unmount(s.Path(name), unix.MNT_DETACH); err != nil {
		s.log.Warn("unmount volume", "volume", name, "err", err)
	}
}

func mountDevice(opts map[string]string, target string) error {
	flags, data, err := mountFlags(opts["o"])
	if err != nil {
		return err
	}
	typ, dev := opts["type"], opts["device"]
	if flags&unix.MS_BIND != 0 {
		// A bind mount: the device is a host path; read-only takes a
		// remount.
		if err := unix.Mount(dev, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return err
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return err
			}
		}
		return nil
	}
	if typ == "nfs" || typ == "nfs4" {
		data = resolveAddr(data)
	}
	return unix.Mount(dev, target, typ, flags, data)
}

// resolveAddr turns addr=HOST into an address, as dockerd does for NFS
// (the kernel's client takes addresses only).
func resolveAddr(data string) string {
	opts := strings.Split(data, ",")
	for i, o := range opts {
		if host, ok := strings.CutPrefix(o, "addr="); ok && net.ParseIP(host) == nil {
			if ips, err := net.LookupIP(host); err == nil && len(ips) > 0 {
				opts[i] = "addr=" + ips[0].String()
			}
		}
	}
	return strings.Join(opts, ",")
}

// unmountLeftovers unmounts volumes a crashed engine left mounted.
func unmountLeftovers(root string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	prefix := filepath.Clean(root) + "/"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], prefix) && strings.HasSuffix(f[4], "/_data") {
			unix.Unmount(f[4], unix.MNT_DETACH)
		}
	}
}
