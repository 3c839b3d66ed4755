//go:build linux

package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// copySpec is one COPY or ADD, expanded.
type copySpec struct {
	verb     string // "COPY" or "ADD"
	srcs     []string
	dest     string // absolute (WORKDIR applied)
	chown    string
	chmod    *os.FileMode
	unpack   bool // ADD: local archives are extracted
	excludes *patternmatcher.PatternMatcher
	fromCtx  bool // sources are the build context (else an image's root)
}

// item is a matched source: the name as the Dockerfile gave it (for the
// destination's base name) and the node it resolves to.
type item struct {
	name string
	n    node
}

// resolveSources expands and resolves the sources of spec in src.
func resolveSources(src source, spec *copySpec, where string) ([]item, error) {
	var items []item
	for _, s := range spec.srcs {
		if spec.verb == "ADD" && isURL(s) {
			return nil, errdefs.NotImplemented("ADD %s: remote URLs are not supported by Berth's builder; download the file into the build context, or fetch it with RUN", s)
		}
		rel, ok := cleanRel(strings.TrimLeft(s, "/"))
		if !ok {
			return nil, errdefs.InvalidArgument("forbidden path outside the build context: %s", s)
		}
		if hasMeta(rel) {
			names, err := glob(src, rel)
			if err != nil {
				return nil, err
			}
			for _, name := range names {
				n, err := src.stat(name)
				if err != nil {
					return nil, err
				}
				items = append(items, item{name: name, n: n})
			}
			continue
		}
		n, err := src.stat(rel)
		if errors.Is(err, errNotInContext) {
			if spec.fromCtx {
				return nil, errdefs.InvalidArgument("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", s)
			}
			return nil, errdefs.InvalidArgument("%s not found in %s", s, where)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, item{name: rel, n: n})
	}
	if len(items) == 0 {
		return nil, errdefs.InvalidArgument("no source files were specified")
	}
	return items, nil
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// contentKey hashes what the sources hold (names, types, modes, content
// digests; not times), for the cache. Only context sources have digests.
func contentKey(src source, items []item, excludes *patternmatcher.PatternMatcher) (string, error) {
	h := sha256.New()
	var walk func(n node) error
	walk = func(n node) error {
		if excluded(excludes, n.rel) {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%c\x00%o\x00%s%s\n", n.rel, n.typ, uint32(n.mode), n.digest, n.target)
		if n.typ != tar.TypeDir {
			return nil
		}
		children, err := src.list(n)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		fmt.Fprintf(h, "%s\n", it.name)
		if err := walk(it.n); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func excluded(pm *patternmatcher.PatternMatcher, rel string) bool {
	if pm == nil || rel == "" {
		return false
	}
	ok, _ := pm.MatchesOrParentMatches(rel)
	return ok
}

// copyItems performs spec into the root that w writes.
func copyItems(src source, w *rootWriter, spec *copySpec, items []item) error {
	uid, gid := w.uid, w.gid
	destDir := strings.HasSuffix(spec.dest, "/") || len(items) > 1
	dest := path.Clean(spec.dest)
	if len(items) > 1 && !strings.HasSuffix(spec.dest, "/") {
		return errdefs.InvalidArgument("When using %s with more than one source file, the destination must be a directory and end with a /", spec.verb)
	}
	if !destDir && w.isDir(dest) {
		destDir = true
	}
	mode := func(m os.FileMode) os.FileMode {
		if spec.chmod != nil {
			return *spec.chmod
		}
		return m
	}
	// Hard links of the context stay links among what this COPY writes.
	links := map[string]string{}
	var tree func(n node, dst string) error
	tree = func(n node, dst string) error {
		if err := w.mkdir(dst, uid, gid, mode(n.mode), n.mtime); err != nil {
			return err
		}
		children, err := src.list(n)
		if err != nil {
			return err
		}
		for _, c := range children {
			if excluded(spec.excludes, c.rel) {
				continue
			}
			if err := one(src, w, c, path.Join(dst, path.Base(c.rel)), uid, gid, mode, tree, links); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		n := it.n
		if excluded(spec.excludes, n.rel) {
			continue
		}
		if n.typ == tar.TypeDir {
			if err := tree(n, dest); err != nil {
				return err
			}
			continue
		}
		if spec.unpack && n.typ == tar.TypeReg {
			done, err := extractIfArchive(src, w, n, dest, spec)
			if err != nil {
				return fmt.Errorf("%s %s: %w", spec.verb, it.name, err)
			}
			if done {
				continue
			}
		}
		dst := dest
		if destDir {
			dst = path.Join(dest, path.Base(it.name))
		}
		if err := one(src, w, n, dst, uid, gid, mode, tree, links); err != nil {
			return err
		}
	}
	return nil
}

func one(src source, w *rootWriter, n node, dst string, uid, gid int, mode func(os.FileMode) os.FileMode, tree func(node, string) error, links map[string]string) error {
	switch n.typ {
	case tar.TypeDir:
		return tree(n, dst)
	case tar.TypeSymlink:
		return w.symlink(dst, n.target, uid, gid, n.mtime)
	default:
		// A link group is keyed with the content and mode too: a later
		// entry may have replaced the group's first path.
		group := n.rel
		if n.linkTo != "" {
			group = n.linkTo
		}
		key := group + "\x00" + n.digest + "\x00" + n.mode.String()
		if first, ok := links[key]; ok && n.digest != "" && first != dst {
			return w.link(dst, first)
		}
		r, err := src.open(n)
		if err != nil {
			return err
		}
		defer r.Close()
		if err := w.file(dst, r, uid, gid, mode(n.mode), n.mtime); err != nil {
			return err
		}
		if n.digest != "" {
			links[key] = dst
		}
		return nil
	}
}

// extractIfArchive extracts n into dest when it is a tar archive (plain,
// gzip, bzip2, xz or zstd), as ADD does for local files.
func extractIfArchive(src source, w *rootWriter, n node, dest string, spec *copySpec) (bool, error) {
	f, err := src.open(n)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(6)
	compressed := compression.Detect(magic) != compression.None
	if !compressed {
		hdr, _ := br.Peek(263)
		if len(hdr) < 263 || !bytes.HasPrefix(hdr[257:], []byte("ustar")) {
			return false, nil
		}
	}
	r, closeDec, err := compression.Decompress(br)
	if err != nil {
		return false, nil // not a valid stream after all: copied as is
	}
	defer closeDec()
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		if compressed && err != io.EOF {
			return false, nil // compressed, but not a tar: copied as is
		}
		if err == io.EOF {
			return true, w.mkdir(dest, w.uid, w.gid, 0o755, n.mtime)
		}
		return false, nil
	}
	if err := w.mkdir(dest, w.uid, w.gid, 0o755, n.mtime); err != nil {
		return true, err
	}
	for ; err == nil; hdr, err = tr.Next() {
		if err := extractEntry(w, tr, hdr, dest, spec.chown != ""); err != nil {
			return true, fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
	if err != io.EOF {
		return true, fmt.Errorf("archive: %w", err)
	}
	return true, nil
}

func extractEntry(w *rootWriter, tr io.Reader, hdr *tar.Header, dest string, chowned bool) error {
	rel, ok := cleanRel(strings.TrimLeft(hdr.Name, "/"))
	if !ok {
		return errors.New("path climbs out of the destination")
	}
	if rel == "" {
		return nil
	}
	dst := path.Join(dest, rel)
	uid, gid := hdr.Uid, hdr.Gid
	if chowned {
		uid, gid = w.uid, w.gid
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
	switch hdr.Typeflag {
	case tar.TypeDir:
		return w.mkdir(dst, uid, gid, mode, hdr.ModTime)
	case tar.TypeReg:
		return w.file(dst, tr, uid, gid, mode, hdr.ModTime)
	case tar.TypeSymlink:
		return w.symlink(dst, hdr.Linkname, uid, gid, hdr.ModTime)
	case tar.TypeLink:
		target, ok := cleanRel(strings.TrimLeft(hdr.Linkname, "/"))
		if !ok || target == "" {
			return errors.New("hard link climbs out of the destination")
		}
		return w.link(dst, path.Join(dest, target))
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		return nil
	}
	return fmt.Errorf("cannot extract special files (type %q)", hdr.Typeflag)
}

// parseChmod reads --chmod: octal permissions only.
func parseChmod(s string) (*os.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return nil, errdefs.InvalidArgument("invalid --chmod=%s: an octal mode such as 755 is expected", s)
	}
	m := os.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return &m, nil
}

// parseChown resolves --chown=user[:group] against the root's own
// /etc/passwd and /etc/group. A user alone gives its primary group when
// named, the same number when numeric (as BuildKit does).
func parseChown(root int, spec string) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	if u == "" || (hasGroup && g == "") {
		return 0, 0, errdefs.InvalidArgument("invalid --chown=%s", spec)
	}
	if n, err := strconv.Atoi(u); err == nil && n >= 0 {
		uid, gid = n, n
	} else {
		var users []user.User
		err := readRootFile(root, "/etc/passwd", func(r io.Reader) (err error) {
			users, err = user.ParsePasswdFilter(r, func(x user.User) bool { return x.Name == u })
			return err
		})
		if err != nil {
			return 0, 0, err
		}
		if len(users) == 0 {
			return 0, 0, errdefs.InvalidArgument("unable to find user %s: no matching entries in passwd file", u)
		}
		uid, gid = users[0].Uid, users[0].Gid
	}
	if !hasGroup {
		return uid, gid, nil
	}
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return uid, n, nil
	}
	var groups []user.Group
	err = readRootFile(root, "/etc/group", func(r io.Reader) (err error) {
		groups, err = user.ParseGroupFilter(r, func(x user.Group) bool { return x.Name == g })
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if len(groups) == 0 {
		return 0, 0, errdefs.InvalidArgument("unable to find group %s: no matching entries in group file", g)
	}
	return uid, groups[0].Gid, nil
}

// readRootFile runs parse over file p of the root; a missing file is
// read as empty.
func readRootFile(root int, p string, parse func(io.Reader) error) error {
	fd, err := inRoot(root, p, unix.O_RDONLY, false)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return parse(strings.NewReader(""))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	return parse(io.LimitReader(f, 10<<20))
}
