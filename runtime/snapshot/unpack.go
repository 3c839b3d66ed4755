//go:build linux

package snapshot

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Unpacking is the security boundary for image content: a layer comes from
// a registry or an archive and may be hostile. The rules:
//
//   - Entry names are relative paths without "..": absolute names and any
//     ".." component are refused.
//   - Every path is resolved component by component from the layer root with
//     O_NOFOLLOW, so nothing is ever written through a symlink, whether the
//     symlink was planted by an earlier entry or not. An entry whose parent
//     path crosses a symlink is refused.
//   - Symlink targets may be absolute (they are resolved inside the
//     container's root) but a relative target may not climb out of the root.
//   - Hardlinks must name an entry already unpacked in this layer, by a path
//     without "..".
//   - Character and block devices are refused; fifos are fine.
//   - overlayfs' own xattrs (trusted.overlay.*) are never taken from a tar:
//     whiteouts and opaque directories are expressed with .wh. entries only.
//
// Each layer is unpacked into its own empty directory (overlay2 style), so
// entries never meet the contents of lower layers.

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = whiteoutPrefix + whiteoutPrefix // ".wh..wh.": aufs metadata
	whiteoutOpaque = whiteoutMeta + ".opq"
	opaqueXattr    = "trusted.overlay.opaque"
	overlayXattrs  = "trusted.overlay."
	paxXattr       = "SCHILY.xattr."
)

// UnpackError names the layer entry that was refused or failed.
type UnpackError struct {
	Entry string
	Err   error
}

func (e *UnpackError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Entry, e.Err) }
func (e *UnpackError) Unwrap() error { return e.Err }

// ErrUnsafe marks entries refused because they would reach outside the
// layer root or create something layers may not hold (devices).
var ErrUnsafe = errors.New("unsafe layer entry")

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafe, fmt.Sprintf(format, args...))
}

// Unpack extracts the uncompressed layer tar r into dir (an existing, empty
// directory), converting whiteouts to overlayfs' form. It returns the bytes
// of file content written. r is read up to the end of the tar archive only.
func Unpack(dir string, r io.Reader) (int64, error) {
	rootFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("unpack: open %s: %w", dir, err)
	}
	u := &unpacker{root: rootFd, cacheFd: -1, buf: make([]byte, 1<<20), chown: os.Geteuid() == 0}
	defer u.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.size, fmt.Errorf("unpack: read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return u.size, &UnpackError{Entry: hdr.Name, Err: err}
		}
	}
	// Directory times last: creating children changes them.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := u.setTimes(d.rel, d.hdr); err != nil {
			return u.size, &UnpackError{Entry: d.hdr.Name, Err: err}
		}
	}
	return u.size, nil
}

type unpacker struct {
	root    int    // O_PATH fd of the layer root
	cacheP  string // parent directory last resolved …
	cacheFd int    // … and its O_PATH fd (-1: none)
	buf     []byte
	size    int64
	chown   bool // root can set ownership; tests as non-root cannot
	dirs    []dirTimes
}

type dirTimes struct {
	rel string
	hdr *tar.Header
}

func (u *unpacker) close() {
	u.dropCache()
	unix.Close(u.root)
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheFd, u.cacheP = -1, ""
}

// cleanName turns a tar entry name into a clean relative path ("" for the
// root itself), refusing absolute names and "..".
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", unsafef("name contains a NUL byte")
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafef("absolute path")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", unsafef("path contains \"..\"")
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/"), nil
}

func splitPath(rel string) (dir, base string) {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i], rel[i+1:]
	}
	return "", rel
}

// parent returns an O_PATH fd for directory rel (relative to the root),
// walking it one component at a time without following symlinks. With
// create, missing directories are made (0755, as tar implies them). The fd
// belongs to the unpacker's cache: callers must not close it.
func (u *unpacker) parent(rel string, create bool) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if u.cacheFd >= 0 && u.cacheP == rel {
		return u.cacheFd, nil
	}
	u.dropCache()
	fd := u.root
	walked := ""
	for _, comp := range strings.Split(rel, "/") {
		walked = joinRel(walked, comp)
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(fd, comp, 0o755); err == nil || err == unix.EEXIST {
				next, err = unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			if fd != u.root {
				unix.Close(fd)
			}
			if err == unix.ENOTDIR || err == unix.ELOOP {
				var st unix.Stat_t
				if unix.Fstatat(u.root, walked, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					return -1, unsafef("path crosses symlink %q", walked)
				}
				return -1, fmt.Errorf("%q is not a directory", walked)
			}
			return -1, fmt.Errorf("open %q: %w", walked, err)
		}
		if fd != u.root {
			unix.Close(fd)
		}
		fd = next
	}
	u.cacheFd, u.cacheP = fd, rel
	return fd, nil
}

func joinRel(a, b string) string {
	if a == "" {
		return b
	}
	return a + "/" + b
}

func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the layer root itself: its directory is ours
	}
	dir, base := splitPath(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr, dir, base)
	}
	for k := range hdr.PAXRecords {
		// A sparse entry's holes expand to any size from a few bytes of
		// tar; no image tool writes them.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("sparse files are not supported")
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		return unsafef("device node refused (layers may not create devices)")
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	pfd, err := u.parent(dir, true)
	if err != nil {
		return err
	}
	if err := u.clear(pfd, dir, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(pfd, rel, base, hdr)
	case tar.TypeSymlink:
		if err := checkSymlink(dir, hdr.Linkname); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		if err := u.hardlink(pfd, base, hdr.Linkname); err != nil {
			return err
		}
		return nil // shares the target's inode and metadata
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
	default:
		return u.file(pfd, base, hdr, body)
	}
	if err := u.owner(pfd, base, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeFifo {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return u.setTimesAt(pfd, base, hdr)
}

// clear removes what an earlier entry left at base, unless both are
// directories (then the new entry only updates the metadata).
func (u *unpacker) clear(pfd int, dir, base string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if isDir {
			return nil
		}
		// The cached parent may be this directory or below it; pfd is its
		// parent, so it stays valid.
		if rel := joinRel(dir, base); u.cacheP == rel || strings.HasPrefix(u.cacheP, rel+"/") {
			u.dropCache()
		}
		// Through /proc/self/fd the parent is pinned; os.RemoveAll does
		// not follow symlinks below it.
		return os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base))
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return nil
}

// checkSymlink refuses relative targets that climb above the layer root
// from the link's directory. Absolute targets are resolved in the
// container's root, so they cannot leave it.
func checkSymlink(dir, target string) error {
	if target == "" {
		return fmt.Errorf("symlink with an empty target")
	}
	if strings.IndexByte(target, 0) >= 0 {
		return unsafef("symlink target contains a NUL byte")
	}
	if strings.HasPrefix(target, "/") {
		return nil
	}
	depth := 0
	if dir != "" {
		depth = strings.Count(dir, "/") + 1
	}
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return unsafef("symlink to %q leads out of the root", target)
			}
		default:
			depth++
		}
	}
	return nil
}

func (u *unpacker) hardlink(pfd int, base, target string) error {
	// Like a symlink's, an absolute target is rooted at the layer root.
	trel, err := cleanName(strings.TrimLeft(target, "/"))
	if err != nil || trel == "" {
		return unsafef("hardlink to %q leads out of the root", target)
	}
	tdir, tbase := splitPath(trel)
	// Resolve the target's parent without disturbing pfd (the cache).
	fd, err := u.openDir(tdir)
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	defer unix.Close(fd)
	if err := unix.Linkat(fd, tbase, pfd, base, 0); err != nil {
		if err == unix.ENOENT {
			return fmt.Errorf("hardlink to %q: target is not in this layer", target)
		}
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	return nil
}

// openDir resolves directory rel like parent, without creating anything or
// touching the cache; the caller closes the fd.
func (u *unpacker) openDir(rel string) (int, error) {
	fd, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	if rel == "" {
		return fd, nil
	}
	walked := ""
	for _, comp := range strings.Split(rel, "/") {
		walked = joinRel(walked, comp)
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if err == unix.ENOTDIR || err == unix.ELOOP {
				return -1, unsafef("path crosses symlink or non-directory %q", walked)
			}
			if err == unix.ENOENT {
				return -1, fmt.Errorf("target is not in this layer")
			}
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

func (u *unpacker) mkdir(pfd int, rel, base string, hdr *tar.Header) error {
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer unix.Close(fd)
	if err := u.fileMeta(fd, hdr); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirTimes{rel: rel, hdr: hdr})
	return nil
}

func (u *unpacker) file(pfd int, base string, hdr *tar.Header, body io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	n, err := copyFull(f, body, u.buf)
	u.size += n
	if err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := u.fileMeta(fd, hdr); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return u.setTimesAt(pfd, base, hdr)
}

// copyFull copies r to f in writes of a whole buffer: a tar entry's reader
// hands out what the decompressor has (often 32 KiB), and one write per
// megabyte costs far fewer syscalls.
func copyFull(f *os.File, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if _, werr := f.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// fileMeta sets owner, mode (after chown, which clears set-id bits) and
// xattrs on an open file or directory.
func (u *unpacker) fileMeta(fd int, hdr *tar.Header) error {
	if u.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(name, overlayXattrs) {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			if err == unix.ENOTSUP || (err == unix.EPERM && !u.chown) {
				continue // the file system (or an unprivileged test) cannot hold it
			}
			return fmt.Errorf("setxattr %s: %w", name, err)
		}
	}
	return nil
}

func (u *unpacker) owner(pfd int, base string, hdr *tar.Header) error {
	if !u.chown {
		return nil
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

func (u *unpacker) setTimes(rel string, hdr *tar.Header) error {
	dir, base := splitPath(rel)
	pfd, err := u.parent(dir, false)
	if err != nil {
		return err
	}
	return u.setTimesAt(pfd, base, hdr)
}

func (u *unpacker) setTimesAt(pfd int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// whiteout applies ".wh.NAME" (NAME deleted: an overlay whiteout, a 0/0
// character device) and ".wh..wh..opq" (the directory hides lower layers).
func (u *unpacker) whiteout(hdr *tar.Header, dir, base string) error {
	pfd, err := u.parent(dir, true)
	if err != nil {
		return err
	}
	if base == whiteoutOpaque {
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open dir: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk and the like)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return unsafef("whiteout of %q", name)
	}
	if err := u.clear(pfd, dir, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", name, err)
	}
	return nil
}
