package pid1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	dataDir = "/data"
	// Where build/guest puts the e2fsprogs libraries (per architecture).
	libPath = "/lib/x86_64-linux-gnu:/lib/aarch64-linux-gnu"
)

// setupDisk mounts the data disk on /data, formatting it first if it is
// blank (a new sparse image from the host). A disk that holds something
// other than ext4 is never formatted: that would lose someone's data.
func setupDisk(dev string) (formatted bool, err error) {
	if err := waitFile(dev, 3*time.Second); err != nil {
		return false, fmt.Errorf("data disk: %w", err)
	}
	kind, err := probeDisk(dev)
	if err != nil {
		return false, fmt.Errorf("data disk %s: %w", dev, err)
	}
	switch kind {
	case diskBlank:
		if err := run("/usr/sbin/mke2fs", "-t", "ext4", "-q", "-F", "-L", "berth-data", "-m", "0",
			"-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", dev); err != nil {
			return false, fmt.Errorf("data disk %s: format: %w", dev, err)
		}
		formatted = true
	case diskOther:
		return false, fmt.Errorf("data disk %s: not ext4 and not blank; refusing to format it", dev)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return formatted, err
	}
	err = unix.Mount(dev, dataDir, "ext4", unix.MS_NOATIME, "")
	if err != nil && !formatted {
		// After a crash the journal replays on mount; a mount that still
		// fails gets a check and one more try.
		if ferr := run("/usr/sbin/e2fsck", "-p", dev); ferr != nil {
			return false, fmt.Errorf("data disk %s: mount: %v; fsck: %w", dev, err, ferr)
		}
		err = unix.Mount(dev, dataDir, "ext4", unix.MS_NOATIME, "")
	}
	if err != nil {
		return formatted, fmt.Errorf("data disk %s: mount: %w", dev, err)
	}
	return formatted, nil
}

// growFS grows the mounted data filesystem to fill its disk when the host
// made the disk bigger (`berth start --disk`): ext4 grows online. A disk
// larger by less than growSlack is left alone.
func growFS(dev string) (grown bool, err error) {
	devSize, err := blockSize(dev)
	if err != nil {
		return false, err
	}
	fsSize, err := ext4Size(dev)
	if err != nil {
		return false, err
	}
	if devSize < fsSize+growSlack {
		return false, nil
	}
	if err := run("/usr/sbin/resize2fs", dev); err != nil {
		return false, fmt.Errorf("grow %s from %d to %d MiB: %w", dev, fsSize>>20, devSize>>20, err)
	}
	return true, nil
}

const growSlack = 64 << 20

func blockSize(dev string) (uint64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, fmt.Errorf("size of %s: %w", dev, e)
	}
	return n, nil
}

// ext4Size reads the filesystem's size from its superblock (at byte 1024).
func ext4Size(dev string) (uint64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, fmt.Errorf("superblock of %s: %w", dev, err)
	}
	return ext4SuperSize(sb)
}

// ext4SuperSize is the size a superblock gives: blocks (low word at 0x4,
// high word at 0x150 with the 64bit feature) times the block size
// (1024 << s_log_block_size at 0x18).
func ext4SuperSize(sb []byte) (uint64, error) {
	if len(sb) < 0x158 || binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, errors.New("not an ext4 superblock")
	}
	blocks := uint64(binary.LittleEndian.Uint32(sb[0x4:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	logBS := binary.LittleEndian.Uint32(sb[0x18:])
	if logBS > 6 {
		return 0, fmt.Errorf("bad block size 1024<<%d", logBS)
	}
	return blocks * (1024 << logBS), nil
}

type diskKind int

const (
	diskExt4 diskKind = iota
	diskBlank
	diskOther
)

// probeDisk tells ext4 (superblock magic 0xEF53 at byte 1080) from a blank
// disk (first 64 KiB zero) from anything else.
func probeDisk(dev string) (diskKind, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := make([]byte, 64<<10)
	if _, err := io.ReadFull(f, b); err != nil {
		return 0, err
	}
	if b[1080] == 0x53 && b[1081] == 0xEF {
		return diskExt4, nil
	}
	if bytes.Count(b, []byte{0}) == len(b) {
		return diskBlank, nil
	}
	return diskOther, nil
}

// runner is PID 1's reaper once it runs: a child's exit status must come
// from it (its wait4(-1) would steal the one exec.Cmd.Wait waits for).
var runner *reaper

func setRunner(r *reaper) { runner = r }

// run runs a program from the initramfs (they are dynamically linked
// against the libraries build/guest copied) and returns its output in the
// error when it fails.
func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH=" + libPath}
	if runner == nil {
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out))
		}
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	ws, err := runner.start(cmd)
	w.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	out, _ := io.ReadAll(r)
	if st := <-ws; st.ExitStatus() != 0 || st.Signaled() {
		return fmt.Errorf("%s: %s: %s", name, describe(st), bytes.TrimSpace(out[:min(len(out), 4096)]))
	}
	return nil
}

// trim discards the free blocks of /data (FITRIM), so the host's sparse
// disk image gives the space back. It returns the bytes trimmed.
func trim() (uint64, error) {
	f, err := os.Open(dataDir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// struct fstrim_range { u64 start, len, minlen }; FITRIM = _IOWR('X', 121, it).
	r := struct{ start, length, minlen uint64 }{0, ^uint64(0), 0}
	const fitrim = 0xC0185879
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fitrim, uintptr(unsafe.Pointer(&r))); e != 0 {
		return 0, fmt.Errorf("fstrim %s: %w", dataDir, e)
	}
	return r.length, nil
}

func diskUsage() (size, used, free uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dataDir, &st); err != nil {
		return 0, 0, 0, err
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs, st.Bavail * bs, nil
}

func isMounted(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(dir+"/..", &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

func waitFile(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
