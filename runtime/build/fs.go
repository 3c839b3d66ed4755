//go:build linux

package build

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Files for COPY and ADD come from a source (the build context, or the
// root file system of a stage or image) and go into the step's root file
// system. Both sides are walked with *at system calls from a directory fd:
// the context with RESOLVE_BENEATH and no symlinks at all (its symlinks are
// resolved through the index), image roots with RESOLVE_IN_ROOT (an image's
// symlinks, absolute ones too, resolve inside it, as in a chroot).

// node is one file of a source.
type node struct {
	rel      string // real path in the source ("" is the root), no symlinks in it
	typ      byte   // tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	mode     os.FileMode
	uid, gid int
	size     int64
	mtime    time.Time
	target   string // symlink target
	digest   string // context files: sha256 of the content
	linkTo   string // context files: a hard link's group (its first path)
}

type source interface {
	// stat resolves name, following symlinks (the last one too).
	stat(name string) (node, error)
	// list returns the children of directory n, sorted; symlinks are not
	// followed.
	list(n node) ([]node, error)
	// open opens regular file n.
	open(n node) (io.ReadCloser, error)
}

// ctxSource reads the build context through its index.
type ctxSource struct {
	bc   *buildContext
	root int
}

func newCtxSource(bc *buildContext) (*ctxSource, error) {
	fd, err := unix.Open(bc.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &ctxSource{bc: bc, root: fd}, nil
}

func (s *ctxSource) close() { unix.Close(s.root) }

func (s *ctxSource) node(rel string) (node, bool) {
	e := s.bc.entries[rel]
	if e == nil {
		return node{}, false
	}
	return node{rel: rel, typ: e.typ, mode: e.mode, size: e.size, mtime: e.mtime, target: e.target, digest: e.digest, linkTo: e.linkTo}, true
}

func (s *ctxSource) stat(name string) (node, error) {
	rel, err := s.bc.resolve(name, true)
	if err != nil {
		return node{}, err
	}
	n, ok := s.node(rel)
	if !ok {
		return node{}, errNotInContext
	}
	return n, nil
}

func (s *ctxSource) list(n node) ([]node, error) {
	var out []node
	for _, p := range s.bc.children(n.rel) {
		c, _ := s.node(p)
		out = append(out, c)
	}
	return out, nil
}

func (s *ctxSource) open(n node) (io.ReadCloser, error) { return openBeneath(s.root, n.rel) }

// rootSource reads an image's root file system (a mounted stage).
type rootSource struct {
	root   int
	prefix string // the root's own path, as /proc reports it
}

func newRootSource(dir string) (*rootSource, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rootSource{root: fd, prefix: p}, nil
}

func (s *rootSource) close() { unix.Close(s.root) }

func inRoot(root int, name string, flags uint64, noSymlinks bool) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if noSymlinks {
		how.Resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	if name == "" {
		name = "."
	}
	for {
		fd, err := unix.Openat2(root, name, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
}

func (s *rootSource) stat(name string) (node, error) {
	fd, err := inRoot(s.root, name, unix.O_PATH, false)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return node{}, errNotInContext
		}
		return node{}, err
	}
	defer unix.Close(fd)
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return node{}, err
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(real, s.prefix), "/")
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return node{}, err
	}
	return statNode(rel, &st, "")
}

func statNode(rel string, st *unix.Stat_t, target string) (node, error) {
	n := node{rel: rel, mode: os.FileMode(st.Mode & 0o777), uid: int(st.Uid), gid: int(st.Gid), size: st.Size,
		mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	if st.Mode&unix.S_ISUID != 0 {
		n.mode |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		n.mode |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		n.mode |= os.ModeSticky
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.typ = tar.TypeReg
	case unix.S_IFDIR:
		n.typ = tar.TypeDir
	case unix.S_IFLNK:
		n.typ, n.target = tar.TypeSymlink, target
	default:
		return n, fmt.Errorf("/%s: cannot copy special files (devices, fifos, sockets)", rel)
	}
	return n, nil
}

func (s *rootSource) list(n node) ([]node, error) {
	fd, err := inRoot(s.root, n.rel, unix.O_RDONLY|unix.O_DIRECTORY, true)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", n.rel, err)
	}
	d := os.NewFile(uintptr(fd), n.rel)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", n.rel, err)
	}
	sort.Strings(names)
	out := make([]node, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("/%s: %w", path.Join(n.rel, name), err)
		}
		target := ""
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			buf := make([]byte, 4096)
			k, err := unix.Readlinkat(fd, name, buf)
			if err != nil {
				return nil, err
			}
			target = string(buf[:k])
		}
		c, err := statNode(path.Join(n.rel, name), &st, target)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *rootSource) open(n node) (io.ReadCloser, error) {
	fd, err := inRoot(s.root, n.rel, unix.O_RDONLY|unix.O_NOFOLLOW, true)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", n.rel, err)
	}
	return os.NewFile(uintptr(fd), n.rel), nil
}

// hasMeta reports whether a COPY source is a pattern.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob expands pattern (a clean relative path) in src, component by
// component; symlinked directories on the way are followed like stat does.
func glob(src source, pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	matches := []string{""}
	for i, part := range parts {
		var next []string
		for _, m := range matches {
			if !hasMeta(part) {
				p := path.Join(m, part)
				if _, err := src.stat(p); err == nil {
					next = append(next, p)
				}
				continue
			}
			dir, err := src.stat(m)
			if err != nil || dir.typ != tar.TypeDir {
				continue
			}
			children, err := src.list(dir)
			if err != nil {
				return nil, err
			}
			for _, c := range children {
				base := path.Base(c.rel)
				ok, err := path.Match(part, base)
				if err != nil {
					return nil, errdefs.InvalidArgument("invalid pattern %q: %v", pattern, err)
				}
				if ok {
					next = append(next, path.Join(m, base))
				}
			}
		}
		matches = next
		if len(matches) == 0 || i == len(parts)-1 {
			break
		}
	}
	sort.Strings(matches)
	return matches, nil
}

// rootWriter writes into a step's root file system, resolving destination
// names inside it. What it creates belongs to uid:gid.
type rootWriter struct {
	root     int
	uid, gid int
	dirs     *fdCache // recently resolved directories, by clean absolute path (not "/")
	buf      []byte
}

func newRootWriter(dir string, uid, gid int) (*rootWriter, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &rootWriter{root: fd, uid: uid, gid: gid, dirs: newFDCache(), buf: make([]byte, 256<<10)}, nil
}

func (w *rootWriter) close() {
	w.dirs.closeAll()
	unix.Close(w.root)
}

// isDir reports whether p (absolute) exists and is a directory, following
// symlinks inside the root.
func (w *rootWriter) isDir(p string) bool {
	fd, err := inRoot(w.root, p, unix.O_PATH|unix.O_DIRECTORY, false)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// dir returns an fd of directory p (absolute, clean), making what is
// missing: made directories get mode (0755 for parents) and the writer's
// owner.
func (w *rootWriter) dir(p string, mode os.FileMode, mtime time.Time) (int, error) {
	if p == "/" {
		return w.root, nil
	}
	if fd, ok := w.dirs.get(p); ok {
		return fd, nil
	}
	fd, err := inRoot(w.root, p, unix.O_PATH|unix.O_DIRECTORY, false)
	if err == unix.ENOENT {
		parent, perr := w.dir(path.Dir(p), 0o755, time.Time{})
		if perr != nil {
			return -1, perr
		}
		base := path.Base(p)
		if err := unix.Mkdirat(parent, base, 0o700); err == unix.EEXIST {
			// Only a dangling symlink exists and cannot be opened.
			return -1, errdefs.InvalidArgument("%s is a symlink to a missing directory", p)
		} else if err != nil {
			return -1, fmt.Errorf("mkdir %s: %w", p, err)
		}
		if err := setMeta(parent, base, w.uid, w.gid, mode, mtime, false); err != nil {
			return -1, fmt.Errorf("mkdir %s: %w", p, err)
		}
		fd, err = inRoot(w.root, p, unix.O_PATH|unix.O_DIRECTORY, false)
	}
	if err != nil {
		if err == unix.ENOTDIR {
			return -1, errdefs.InvalidArgument("%s exists and is not a directory", p)
		}
		return -1, fmt.Errorf("%s: %w", p, err)
	}
	w.dirs.put(p, fd)
	return fd, nil
}

// setMeta sets owner, mode and time of base in directory fd (not following
// a symlink there). Owner first: chown clears setuid bits.
func setMeta(dirfd int, base string, uid, gid int, mode os.FileMode, mtime time.Time, symlink bool) error {
	if err := unix.Fchownat(dirfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if !symlink {
		if err := unix.Fchmodat(dirfd, base, unixMode(mode), 0); err != nil {
			return err
		}
	}
	if !mtime.IsZero() {
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// prepare makes room for a new entry at dst: the parent directory exists
// and nothing but a directory (when keepDir) is left at the name.
func (w *rootWriter) prepare(dst string, keepDir bool) (int, string, bool, error) {
	parent, err := w.dir(path.Dir(dst), 0o755, time.Time{})
	if err != nil {
		return -1, "", false, err
	}
	base := path.Base(dst)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if keepDir {
				return parent, base, true, nil
			}
			return -1, "", false, errdefs.InvalidArgument("cannot overwrite directory %s with a file", dst)
		}
		if err := unix.Unlinkat(parent, base, 0); err != nil {
			return -1, "", false, fmt.Errorf("replace %s: %w", dst, err)
		}
	}
	return parent, base, false, nil
}

// file writes a regular file at dst with r's content.
func (w *rootWriter) file(dst string, r io.Reader, uid, gid int, mode os.FileMode, mtime time.Time) error {
	parent, base, _, err := w.prepare(dst, false)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	f := os.NewFile(uintptr(fd), dst)
	_, err = io.CopyBuffer(f, r, w.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return setMeta(parent, base, uid, gid, mode, mtime, false)
}

// symlink makes a symlink at dst.
func (w *rootWriter) symlink(dst, target string, uid, gid int, mtime time.Time) error {
	parent, base, _, err := w.prepare(dst, false)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(target, parent, base); err != nil {
		return fmt.Errorf("symlink %s: %w", dst, err)
	}
	return setMeta(parent, base, uid, gid, 0, mtime, true)
}

// mkdir makes directory dst (keeping one that exists, with its metadata).
func (w *rootWriter) mkdir(dst string, uid, gid int, mode os.FileMode, mtime time.Time) error {
	parent, base, exists, err := w.prepare(dst, true)
	if err != nil || exists {
		return err
	}
	if err := unix.Mkdirat(parent, base, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", dst, err)
	}
	return setMeta(parent, base, uid, gid, mode, mtime, false)
}

// link makes dst a hard link to the regular file target (absolute, in the root).
func (w *rootWriter) link(dst, target string) error {
	src, err := inRoot(w.root, target, unix.O_PATH|unix.O_NOFOLLOW, false)
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", dst, target, err)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errdefs.InvalidArgument("link %s: target %s is not a regular file", dst, target)
	}
	parent, base, _, err := w.prepare(dst, false)
	if err != nil {
		return err
	}
	if err := unix.Linkat(src, "", parent, base, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("link %s to %s: %w", dst, target, err)
	}
	return nil
}
