//go:build linux

package container

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/moby/moby/api/types/events"
)

// Export writes a container's root filesystem as a tar (docker export):
// the image's files with the container's changes, without its volumes or
// bind mounts, as dockerd exports it. head is called once the root is
// ready, before the first byte, so a failure before then is a plain error.
func (m *Manager) Export(ref string, head func() (io.Writer, error)) error {
	c, err := m.Get(ref)
	if err != nil {
		return err
	}
	rec := c.snapshot()
	c.mu.Lock()
	running := c.run != nil
	c.mu.Unlock()
	dir, err := m.cfg.RootFS.Prepare(rec.ID, rec.ChainID)
	if err != nil {
		return fmt.Errorf("container %s: mount rootfs: %w", rec.ID, err)
	}
	if !running {
		defer func() {
			if !c.snapshot().State.Running() {
				m.cfg.RootFS.Unmount(rec.ID)
			}
		}()
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	w, err := head()
	if err != nil {
		return err
	}
	if err := writeTree(w, root); err != nil {
		return fmt.Errorf("export %s: %w", rec.ID, err)
	}
	m.event(c, events.ActionExport, nil)
	return nil
}

// writeTree writes everything under root as a tar with names relative to
// it; files linked more than once are written once and then as hard links.
// Sockets are left out (tar cannot hold them).
func writeTree(w io.Writer, root *os.Root) error {
	tw := tar.NewWriter(w)
	links := map[uint64]string{}
	buf := make([]byte, 1<<20)
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = root.Readlink(p); err != nil {
				return err
			}
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name, hdr.Uname, hdr.Gname = p, "", ""
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			links[st.Ino] = p
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), buf)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
