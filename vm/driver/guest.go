package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Optional abilities of a driver, found by type assertion.

// Suspender saves a running machine's memory to its state dir and stops
// it; the next Start resumes from there instead of booting (the disk is
// untouched in between, so the guest carries on where it was).
type Suspender interface {
	Suspend(ctx context.Context) error
}

// Balloon lets the host take memory back from a running guest (and give it
// again, up to Machine.MemoryMiB).
type Balloon interface {
	SetMemoryTarget(ctx context.Context, mib int) error
}

// DataDisk is the name of the machine's persistent data disk in its state
// dir: a sparse raw file that the guest formats on first boot.
const DataDisk = "data.img"

// SystemDisk is the name of the guest's read-only system disk next to its
// kernel and initramfs (make guest).
const SystemDisk = "system.img"

// EnsureDisk creates the sparse data disk of gib GiB at path, or grows one
// that is smaller (the guest grows its filesystem at boot). Disks never
// shrink.
func EnsureDisk(path string, gib int, log *slog.Logger) error {
	size := int64(gib) << 30
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("data disk: %w", err)
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("data disk: %w", err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("data disk: %w", err)
	case fi.Size() < size:
		log.Info("growing the data disk", "from_GiB", fi.Size()>>30, "to_GiB", gib)
		return os.Truncate(path, size)
	case fi.Size() > size:
		log.Warn("data disk is bigger than asked; disks never shrink", "have_GiB", fi.Size()>>30, "asked_GiB", gib)
	}
	return nil
}

var shareTag = regexp.MustCompile(`^[A-Za-z0-9_-]{1,36}$`)

// CheckMachine checks what every VM driver needs of m: the boot files
// (m.System defaults to system.img next to the initrd), sane sizes, and
// shared folders whose tags and guest paths can pass the kernel command
// line.
func CheckMachine(m *Machine) error {
	if m.System == "" && m.Initrd != "" {
		m.System = filepath.Join(filepath.Dir(m.Initrd), SystemDisk)
	}
	for _, f := range []struct{ what, path string }{{"kernel", m.Kernel}, {"initrd", m.Initrd}, {"system disk", m.System}} {
		if f.path == "" {
			return fmt.Errorf("no %s given (build it with `make guest`)", f.what)
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w (build it with `make guest`)", f.what, err)
		}
	}
	if m.CPUs <= 0 || m.MemoryMiB < 128 || m.DiskGiB <= 0 {
		return fmt.Errorf("want CPUs ≥ 1, memory ≥ 128 MiB and a disk size (have %d CPUs, %d MiB, %d GiB)", m.CPUs, m.MemoryMiB, m.DiskGiB)
	}
	for _, sh := range m.Shares {
		if !shareTag.MatchString(sh.Tag) {
			return fmt.Errorf("shared folder tag %q: want 1-36 of [A-Za-z0-9_-]", sh.Tag)
		}
		if !strings.HasPrefix(sh.GuestPath, "/") || strings.ContainsAny(sh.GuestPath, " \t\n:,\"") {
			return fmt.Errorf("shared folder %s: guest path %q must be absolute, without spaces, colons or commas (it passes the kernel command line)", sh.Tag, sh.GuestPath)
		}
		if fi, err := os.Stat(sh.HostPath); err != nil || !fi.IsDir() {
			return fmt.Errorf("shared folder %s: %s is not a directory (%v)", sh.Tag, sh.HostPath, err)
		}
	}
	return nil
}

// GuestParams are the berth.* kernel parameters guest-agent/pid1 reads for
// m: extra engine flags, the log level and the shared folders.
func GuestParams(m *Machine, logLevel string) ([]string, error) {
	var out []string
	if len(m.EngineArgs) > 0 {
		for _, a := range m.EngineArgs {
			if strings.ContainsAny(a, ", \t\n\"") {
				return nil, fmt.Errorf("engine argument %q: commas, quotes and spaces cannot pass the kernel command line", a)
			}
		}
		out = append(out, "berth.engine="+strings.Join(m.EngineArgs, ","))
	}
	if logLevel != "" {
		out = append(out, "berth.log="+logLevel)
	}
	for _, sh := range m.Shares {
		a := "berth.share=" + sh.Tag + ":" + sh.GuestPath
		if sh.ReadOnly {
			a += ":ro"
		}
		out = append(out, a)
	}
	return out, nil
}
