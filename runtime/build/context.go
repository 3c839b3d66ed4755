//go:build linux

package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// The build context arrives as a tar stream from the client and is hostile
// input: it is unpacked into a private directory by this file's own rules,
// and COPY resolves names through the index built here, never through the
// file system, so nothing outside the context can be reached:
//
//   - names are relative and without "..": anything else is refused;
//   - nothing is written through a symlink: an entry below a symlink is
//     refused, and existing entries are replaced, not followed;
//   - devices and other special files are refused;
//   - symlinks are kept as they are (any target) and resolved only within
//     the index when a COPY names them; one pointing outside the context
//     is an error then.

// ctxEntry is one path of the context.
type ctxEntry struct {
	typ    byte        // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode   os.FileMode // permission bits (with setuid, setgid, sticky)
	target string      // symlink target
	digest string      // regular file: sha256 of the content
	linkTo string      // a hard link: the first path of its group
	size   int64
	mtime  time.Time
}

// buildContext is an unpacked context: its files under dir and their index.
type buildContext struct {
	dir     string
	entries map[string]*ctxEntry // clean relative path → entry; "" is the root
	sorted  []string             // the paths, sorted (built on demand)
}

// maxContextEntries bounds the index (and memory) for a hostile stream.
const maxContextEntries = 1 << 20

// unpackContext unpacks the (possibly compressed) context tar r into dir,
// an empty directory.
func unpackContext(r io.Reader, dir string) (*buildContext, error) {
	tr, closeFn, err := compression.Decompress(r)
	if err != nil {
		return nil, errdefs.InvalidArgument("build context: %v", err)
	}
	defer closeFn()
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	u := &ctxUnpacker{bc: &buildContext{dir: dir, entries: map[string]*ctxEntry{"": {typ: tar.TypeDir, mode: 0o755}}},
		root: root, dirs: newFDCache(), buf: make([]byte, 256<<10)}
	defer u.close()
	t := tar.NewReader(tr)
	for n := 0; ; n++ {
		hdr, err := t.Next()
		if err == io.EOF {
			if n == 0 {
				return nil, errdefs.InvalidArgument("build context: empty or not a tar archive")
			}
			break
		}
		if err != nil {
			if n == 0 { // a 500, as dockerd answers it
				return nil, errdefs.As(errdefs.KindUnknown, fmt.Errorf("build context: not a tar archive: %w", err))
			}
			return nil, errdefs.InvalidArgument("build context: %v", err)
		}
		if len(u.bc.entries) > maxContextEntries {
			return nil, errdefs.InvalidArgument("build context: more than %d entries", maxContextEntries)
		}
		if err := u.entry(hdr, t); err != nil {
			if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EIO) || errors.Is(err, unix.EMFILE) {
				return nil, fmt.Errorf("build context: entry %q: %w", hdr.Name, err) // the engine's trouble, not the context's
			}
			return nil, errdefs.InvalidArgument("build context: entry %q: %v", hdr.Name, err)
		}
	}
	return u.bc, nil
}

type ctxUnpacker struct {
	bc   *buildContext
	root int
	dirs *fdCache // O_PATH fds of recently used directories (not the root)
	buf  []byte
}

func (u *ctxUnpacker) close() {
	u.dirs.closeAll()
	unix.Close(u.root)
}

// cleanRel turns a tar or COPY name into a clean relative path; ok is false
// for absolute names and names that climb out with "..".
func cleanRel(name string) (rel string, ok bool) {
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	rel = path.Clean(name)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	if rel == "." {
		rel = ""
	}
	return rel, true
}

func (u *ctxUnpacker) entry(hdr *tar.Header, body io.Reader) error {
	if strings.HasPrefix(hdr.Name, "/") {
		return errors.New("absolute path in the build context")
	}
	rel, ok := cleanRel(hdr.Name)
	if !ok {
		return errors.New("path escapes the build context")
	}
	if rel == "" {
		return nil // the context root itself
	}
	for k := range hdr.PAXRecords {
		// A sparse entry's holes expand to any size from a few bytes.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return errors.New("sparse files are not allowed in a build context")
		}
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	pfd, err := u.mkdirs(dir)
	if err != nil {
		return err
	}
	mode := os.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	e := &ctxEntry{mode: mode, mtime: hdr.ModTime}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old := u.bc.entries[rel]; old == nil || old.typ != tar.TypeDir {
			if err := u.clear(pfd, rel, base); err != nil {
				return err
			}
			if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
				return err
			}
		}
		e.typ = tar.TypeDir
	case tar.TypeReg:
		if err := u.clear(pfd, rel, base); err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(f, h), body, u.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		e.typ, e.digest, e.size = tar.TypeReg, hex.EncodeToString(h.Sum(nil)), n
	case tar.TypeLink:
		// A hard link stays one (a copy per link would turn a small
		// archive into any size on disk): to a regular file unpacked
		// before it, found through the index, opened through no symlink.
		target, ok := cleanRel(hdr.Linkname)
		src := u.bc.entries[target]
		if !ok || src == nil || src.typ != tar.TypeReg {
			return fmt.Errorf("hard link to %q, which is not a file of the build context", hdr.Linkname)
		}
		if target == rel {
			return nil // a link to itself: the file is already there
		}
		if err := u.clear(pfd, rel, base); err != nil {
			return err
		}
		if err := u.link(target, pfd, base); err != nil {
			return err
		}
		group := target
		if src.linkTo != "" {
			group = src.linkTo
		}
		e.typ, e.digest, e.size, e.linkTo = tar.TypeReg, src.digest, src.size, group
	case tar.TypeSymlink:
		if err := u.clear(pfd, rel, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		e.typ, e.target = tar.TypeSymlink, hdr.Linkname
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	default:
		return fmt.Errorf("special files (type %q) are not allowed in a build context", hdr.Typeflag)
	}
	u.bc.entries[rel] = e
	return nil
}

// mkdirs returns an fd of directory rel, making missing directories; a
// component that is not a directory (a symlink included) is an error.
func (u *ctxUnpacker) mkdirs(rel string) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if fd, ok := u.dirs.get(rel); ok {
		return fd, nil
	}
	if e := u.bc.entries[rel]; e != nil && e.typ == tar.TypeDir {
		// Made earlier, its fd since closed: open it again from the
		// root, through no symlink.
		fd, err := unix.Openat2(u.root, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
		if err != nil {
			return -1, fmt.Errorf("%s: %w", rel, err)
		}
		u.dirs.put(rel, fd)
		return fd, nil
	}
	parent, base := path.Split(rel)
	pfd, err := u.mkdirs(strings.TrimSuffix(parent, "/"))
	if err != nil {
		return -1, err
	}
	if e := u.bc.entries[rel]; e != nil && e.typ != tar.TypeDir {
		return -1, fmt.Errorf("%s is not a directory", rel)
	}
	if _, ok := u.bc.entries[rel]; !ok {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return -1, err
		}
		u.bc.entries[rel] = &ctxEntry{typ: tar.TypeDir, mode: 0o755}
	}
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", rel, err)
	}
	u.dirs.put(rel, fd)
	return fd, nil
}

// clear removes what an earlier entry left at rel (a later entry of the
// same name replaces it, as tar does), recursively for a directory.
func (u *ctxUnpacker) clear(pfd int, rel, base string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	// Rare: a file replacing a directory. Its subtree leaves the index,
	// the fd cache and the disk.
	for p := range u.bc.entries {
		if p == rel || strings.HasPrefix(p, rel+"/") {
			delete(u.bc.entries, p)
		}
	}
	u.dirs.dropTree(rel)
	return removeAllAt(pfd, base)
}

// link makes base in directory pfd a hard link to regular file srcRel.
func (u *ctxUnpacker) link(srcRel string, pfd int, base string) error {
	fd, err := unix.Openat2(u.root, srcRel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("link to %s: %w", srcRel, err)
	}
	defer unix.Close(fd)
	if err := unix.Linkat(fd, "", pfd, base, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("link to %s: %w", srcRel, err)
	}
	return nil
}

// openBeneath opens regular file rel under the directory fd root without
// following any symlink.
func openBeneath(root int, rel string) (*os.File, error) {
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// removeAllAt removes base under dirfd and everything below it, without
// following symlinks.
func removeAllAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
}

// readFile reads regular file rel of the context (no symlinks followed).
func (bc *buildContext) readFile(rel string, limit int64) ([]byte, error) {
	root, err := unix.Open(bc.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	f, err := openBeneath(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", rel, limit)
	}
	return b, nil
}

// applyIgnore drops what .dockerignore excludes from the index and the
// disk. The client filters too; this keeps API clients that send a plain
// folder right.
func (bc *buildContext) applyIgnore() error {
	e := bc.entries[".dockerignore"]
	if e == nil || e.typ != tar.TypeReg {
		return nil
	}
	raw, err := bc.readFile(".dockerignore", 1<<20)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(raw))
	if err != nil {
		return errdefs.InvalidArgument("error reading .dockerignore: %v", err)
	}
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.InvalidArgument("invalid .dockerignore: %v", err)
	}
	// Ignored paths leave the index; COPY reads only what the index has.
	parents := map[string]patternmatcher.MatchInfo{}
	dropped := map[string]*ctxEntry{}
	for _, p := range bc.paths() {
		if p == "" {
			continue
		}
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		matched, m, err := pm.MatchesUsingParentResults(p, parents[dir])
		if err != nil {
			return errdefs.InvalidArgument("invalid .dockerignore: %v", err)
		}
		if bc.entries[p].typ == tar.TypeDir {
			parents[p] = m
		}
		if matched {
			dropped[p] = bc.entries[p]
			delete(bc.entries, p)
		}
	}
	// An exception (!pattern) can keep a path below an ignored directory:
	// its directories stay.
	for p := range bc.entries {
		for d := path.Dir(p); d != "." && bc.entries[d] == nil; d = path.Dir(d) {
			bc.entries[d] = dropped[d]
		}
	}
	bc.sorted = nil
	return nil
}

// paths returns every indexed path, sorted, parents before children.
func (bc *buildContext) paths() []string {
	if bc.sorted == nil {
		bc.sorted = make([]string, 0, len(bc.entries))
		for p := range bc.entries {
			bc.sorted = append(bc.sorted, p)
		}
		sort.Strings(bc.sorted)
	}
	return bc.sorted
}

// children returns the indexed paths directly below directory rel.
func (bc *buildContext) children(rel string) []string {
	all := bc.paths()
	prefix := rel + "/"
	if rel == "" {
		prefix = ""
	}
	i := sort.SearchStrings(all, prefix)
	var out []string
	for ; i < len(all); i++ {
		p := all[i]
		if !strings.HasPrefix(p, prefix) {
			break
		}
		if p != rel && p != "" && !strings.Contains(p[len(prefix):], "/") {
			out = append(out, p)
		}
	}
	return out
}

// resolve follows symlinks in rel through the index. A symlink whose
// target leaves the context (absolute, or climbing above its root) is an
// error: the context is the only thing a build may read.
func (bc *buildContext) resolve(rel string, followLast bool) (string, error) {
	parts := strings.Split(rel, "/")
	if rel == "" {
		parts = nil
	}
	cur := ""
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		next := path.Join(cur, name)
		e := bc.entries[next]
		if e == nil || e.typ != tar.TypeSymlink || (len(parts) == 0 && !followLast) {
			cur = next
			if e == nil && len(parts) > 0 {
				return "", errNotInContext
			}
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		if strings.HasPrefix(e.target, "/") {
			return "", errdefs.InvalidArgument("%s is a symlink to %s, outside the build context", next, e.target)
		}
		t := path.Join(cur, e.target)
		if t == ".." || strings.HasPrefix(t, "../") {
			return "", errdefs.InvalidArgument("%s is a symlink to %s, outside the build context", next, e.target)
		}
		if t == "." {
			t = ""
		}
		var tparts []string
		if t != "" {
			tparts = strings.Split(t, "/")
		}
		parts = append(tparts, parts...)
		cur = ""
	}
	return cur, nil
}

var errNotInContext = errors.New("file does not exist")
