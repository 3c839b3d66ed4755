package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// earlyMounts are what PID 1 needs to start the engine: the kernel's
// command line, the disks' device nodes. The kernel does not mount
// devtmpfs for an initramfs (DEVTMPFS_MOUNT is off).
var earlyMounts = []mountSpec{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
}

// baseMounts are the other kernel filesystems every process here expects,
// mounted while the engine's process starts (it opens nothing before its
// gate).
var baseMounts = []mountSpec{
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	// favordynmods: moving a process into a cgroup, as every container
	// start and exec does, no longer waits for an RCU grace period (about
	// 10 ms a move in a TCG guest), for a little more work in fork and exit.
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate,favordynmods"},
	{"securityfs", "/sys/kernel/security", "securityfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700"},
}

// leaveRootfs makes / a mount of its own. The initramfs is the kernel's
// rootfs, which pivot_root(2) refuses to leave (EINVAL: it has no parent
// mount), and container runtimes pivot_root into each container. A bind
// mount of rootfs moved onto / has a parent: PID 1 chroots into it and
// everything after, containers included, sees an ordinary root. Nothing is
// copied.
func leaveRootfs() error {
	const nr = "/.root"
	if err := os.MkdirAll(nr, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("/", nr, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind / on %s: %w", nr, err)
	}
	if err := unix.Chdir(nr); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", nr, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

func mountEarly() error { return mountAll(earlyMounts) }

func mountBase() error {
	if err := mountAll(baseMounts); err != nil {
		return err
	}
	for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}, {"pts/ptmx", "/dev/ptmx"}} {
		os.Remove(l[1])
		os.Symlink(l[0], l[1])
	}
	return enableControllers()
}

func mountAll(ms []mountSpec) error {
	for _, m := range ms {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if errors.Is(err, unix.EINVAL) && m.fstype == "cgroup2" { // a kernel before 6.0: no favordynmods
			err = unix.Mount(m.source, m.target, m.fstype, m.flags, "nsdelegate")
		}
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// enableControllers delegates every available cgroup v2 controller to the
// children of the root, where the engine puts containers.
func enableControllers() error {
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroup controllers: %w", err)
	}
	var want []string
	for _, c := range strings.Fields(string(b)) {
		want = append(want, "+"+c)
	}
	if len(want) == 0 {
		return nil
	}
	return os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(want, " ")), 0)
}

// writeEtc makes the few files programs look up: hosts, resolv.conf,
// hostname, and the nsswitch-free passwd/group the engine may read.
func writeEtc(cfg Config) error {
	var resolv strings.Builder
	for _, d := range cfg.DNS {
		fmt.Fprintf(&resolv, "nameserver %s\n", d)
	}
	files := map[string]string{
		"/etc/hostname":    hostname + "\n",
		"/etc/hosts":       hosts(cfg),
		"/etc/resolv.conf": resolv.String(),
		"/etc/passwd":      "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/group":       "root:x:0:\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return err
		}
	}
	return unix.Sethostname([]byte(hostname))
}

const hostname = "berth"

// hosts is the machine's /etc/hosts: the host is host.docker.internal
// (the user network's gateway), as in containers, so the engine pulls from
// a registry on the host by that name too.
func hosts(cfg Config) string {
	h := "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if cfg.Gateway.IsValid() {
		h += cfg.Gateway.String() + "\thost.docker.internal gateway.docker.internal\n"
	}
	return h
}
