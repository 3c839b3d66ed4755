//go:build linux

package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	ctr "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/compression"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// docker cp: paths in a container are resolved inside its root filesystem
// (or the volume or bind mount that covers them) without ever leaving it,
// even while the container swaps symlinks under us: parents are opened with
// openat2-style resolution scoped to the root (filepath-securejoin), trees
// are read through an os.Root, and archives written in are extracted by
// runtime/snapshot's layer unpacker, the engine's one safe extractor.

// fsRoot is the host directory holding a container path and the path
// relative to it.
type fsRoot struct {
	dir     string
	rel     string
	release func()
}

// resolve maps a container path onto the host: the volume or bind mount
// covering it, else the container's root filesystem (mounted for the time
// of the call if the container is not running).
func (m *Manager) resolve(c *Container, p string) (*fsRoot, error) {
	if !path.IsAbs(p) {
		return nil, errdefs.InvalidArgument("path %q is not absolute", p)
	}
	clean := path.Clean(p)
	rec, running := c.snapshot(), false
	c.mu.Lock()
	running = c.run != nil
	c.mu.Unlock()
	best := -1
	for i, mp := range rec.Mounts {
		d := mp.Destination
		if (clean == d || strings.HasPrefix(clean, strings.TrimSuffix(d, "/")+"/")) && (best < 0 || len(d) > len(rec.Mounts[best].Destination)) {
			best = i
		}
	}
	if best >= 0 {
		mp := rec.Mounts[best]
		src := mp.Source
		if mp.Type == "volume" {
			src = m.cfg.Volumes.Path(mp.Name)
		}
		rel := strings.TrimPrefix(clean, mp.Destination)
		if !strings.HasPrefix(rel, "/") {
			rel = "/" + rel
		}
		return &fsRoot{dir: src, rel: rel, release: func() {}}, nil
	}
	dir, err := m.cfg.RootFS.Prepare(rec.ID, rec.ChainID)
	if err != nil {
		return nil, fmt.Errorf("container %s: mount rootfs: %w", rec.ID, err)
	}
	release := func() {}
	if !running {
		release = func() {
			if c.snapshot().State.Running() {
				return // started meanwhile: the mount is its own now
			}
			m.cfg.RootFS.Unmount(rec.ID)
		}
	}
	return &fsRoot{dir: dir, rel: clean, release: release}, nil
}

// openParent opens the directory holding rel's last component, resolved
// inside root, and returns it with the base name.
func openParent(root *fsRoot) (*os.File, string, error) {
	dir, base := path.Split(root.rel)
	f, err := pathrs.OpenInRoot(root.dir, dir)
	if err != nil {
		return nil, "", notFoundPath(root.rel, err)
	}
	if base == "" {
		base = "."
	}
	return f, base, nil
}

func notFoundPath(p string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return errdefs.NotFound("Could not find the file %s in container", p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// inContainer names the container in a missing path's error, as dockerd.
func inContainer(err error, p, ref string) error {
	if errdefs.IsNotFound(err) && strings.HasPrefix(err.Error(), "Could not find the file") {
		return errdefs.NotFound("Could not find the file %s in container %s", p, ref)
	}
	return err
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// StatPath reports a path in a container (HEAD /containers/{id}/archive).
func (m *Manager) StatPath(ref, p string) (ctr.PathStat, error) {
	st, err := m.statPath(ref, p)
	return st, inContainer(err, p, ref)
}

func (m *Manager) statPath(ref, p string) (ctr.PathStat, error) {
	c, err := m.Get(ref)
	if err != nil {
		return ctr.PathStat{}, err
	}
	root, err := m.resolve(c, p)
	if err != nil {
		return ctr.PathStat{}, err
	}
	defer root.release()
	parent, base, err := openParent(root)
	if err != nil {
		return ctr.PathStat{}, err
	}
	defer parent.Close()
	r, err := os.OpenRoot(fdPath(parent))
	if err != nil {
		return ctr.PathStat{}, err
	}
	defer r.Close()
	return statIn(r, base, p)
}

func statIn(r *os.Root, base, p string) (ctr.PathStat, error) {
	fi, err := r.Lstat(base)
	if err != nil {
		return ctr.PathStat{}, notFoundPath(p, err)
	}
	if strings.HasSuffix(p, "/") && path.Clean(p) != "/" && !fi.IsDir() {
		if target, err := r.Stat(base); err != nil || !target.IsDir() {
			// "file/" names a directory that is not there: an error, as
			// lstat gives dockerd (a 500).
			return ctr.PathStat{}, errdefs.As(errdefs.KindUnknown, fmt.Errorf("lstat %s: not a directory", p))
		}
	}
	st := ctr.PathStat{Name: path.Base(p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// The link's target as a path in the container, as dockerd
		// reports it.
		target, _ := r.Readlink(base)
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(path.Clean(p)), target)
		}
		st.LinkTarget = path.Clean(target)
	}
	return st, nil
}

// ArchivePath streams a path of a container as a tar (GET
// /containers/{id}/archive): stat is reported first, through head, before
// any byte of the archive is written.
func (m *Manager) ArchivePath(ref, p string, head func(ctr.PathStat) (io.Writer, error)) error {
	return inContainer(m.archivePath(ref, p, head), p, ref)
}

func (m *Manager) archivePath(ref, p string, head func(ctr.PathStat) (io.Writer, error)) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	root, err := m.resolve(c, p)
	if err != nil {
		return err
	}
	defer root.release()
	parent, base, err := openParent(root)
	if err != nil {
		return err
	}
	defer parent.Close()
	r, err := os.OpenRoot(fdPath(parent))
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := statIn(r, base, p)
	if err != nil {
		return err
	}
	w, err := head(st)
	if err != nil {
		return err
	}
	// Entries are named after the path's last element ("." for "dir/."),
	// as dockerd names them; the CLI renames them to the destination.
	name := path.Base(p)
	if strings.HasSuffix(p, "/.") {
		name = "."
	}
	tw := tar.NewWriter(w)
	err = fs.WalkDir(r.FS(), base, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := r.Lstat(q)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = r.Readlink(q); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are not archived
		}
		hdr.Name = path.Join(name, strings.TrimPrefix(strings.TrimPrefix(q, base), "/"))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := r.Open(q)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	return tw.Close()
}

// ExtractToPath unpacks a tar into a directory of a container (PUT
// /containers/{id}/archive). Entries are checked as image layers are (no
// escapes, no devices, nothing written through a symlink); whiteouts are
// refused; without copyUIDGID files belong to the container's root, as
// dockerd does; a directory is never replaced by a file or the reverse.
func (m *Manager) ExtractToPath(ref, p string, r io.Reader, copyUIDGID bool) error {
	return inContainer(m.extractToPath(ref, p, r, copyUIDGID), p, ref)
}

func (m *Manager) extractToPath(ref, p string, r io.Reader, copyUIDGID bool) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	if c.snapshot().HostConfig.ReadonlyRootfs {
		return errdefs.Forbidden("container rootfs is marked read-only")
	}
	root, err := m.resolve(c, p)
	if err != nil {
		return err
	}
	defer root.release()
	dir, err := pathrs.OpenInRoot(root.dir, root.rel)
	if err != nil {
		return notFoundPath(p, err)
	}
	defer dir.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errdefs.InvalidArgument("extraction point is not a directory")
	}
	existing, err := os.OpenRoot(fdPath(dir))
	if err != nil {
		return err
	}
	defer existing.Close()
	// The API allows the archive in any compression (docker cp sends it
	// plain; other clients gzip it).
	plain, closeDec, err := compression.Decompress(r)
	if err != nil {
		return errdefs.InvalidArgument("copy to container %s: %v", p, err)
	}
	defer closeDec()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(filterCopyIn(plain, pw, existing, copyUIDGID)) }()
	_, err = snapshot.Unpack(fdPath(dir), pr)
	pr.CloseWithError(err) // stops the filter if Unpack ended first
	if err != nil {
		if errors.Is(err, snapshot.ErrUnsafe) {
			return errdefs.InvalidArgument("copy to container %s: %v", p, err)
		}
		return fmt.Errorf("copy to container %s: %w", p, err)
	}
	return nil
}

// filterCopyIn passes a docker cp tar on to the unpacker, refusing what a
// copy must not do there and setting owners.
func filterCopyIn(r io.Reader, w io.Writer, existing *os.Root, copyUIDGID bool) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return errdefs.InvalidArgument("read archive: %v", err)
		}
		base := path.Base(hdr.Name)
		if strings.HasPrefix(base, ".wh.") {
			return errdefs.InvalidArgument("archive entry %q: whiteout files cannot be copied into a container", hdr.Name)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name != "" {
			if fi, err := existing.Lstat(name); err == nil {
				if isDir := hdr.Typeflag == tar.TypeDir; fi.IsDir() != isDir {
					if isDir {
						return errdefs.InvalidArgument("cannot overwrite non-directory %q with directory", name)
					}
					return errdefs.InvalidArgument("cannot overwrite directory %q with non-directory", name)
				}
			}
		}
		if !copyUIDGID {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
