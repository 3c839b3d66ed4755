package cli

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// tarPath writes src (a file or a directory tree) as a tar whose entries
// are named after src's last element, as docker cp sends them.
func tarPath(w io.Writer, src string) error {
	tw := tar.NewWriter(w)
	base := filepath.Base(filepath.Clean(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like
		}
		rel, _ := filepath.Rel(src, p)
		hdr.Name = path.Join(base, filepath.ToSlash(rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// untarTo extracts a docker cp archive whose top element is name: into
// dest if dest is an existing directory, else as dest itself. Everything
// is written through an os.Root, so no entry lands outside the target.
func untarTo(r io.Reader, name, dest string) error {
	dir, rename := dest, ""
	if fi, err := os.Stat(dest); err != nil || !fi.IsDir() {
		dir, rename = filepath.Dir(dest), filepath.Base(dest)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		p := path.Clean(hdr.Name)
		if rename != "" {
			first, rest, _ := strings.Cut(p, "/")
			if first == name || first == "." {
				p = path.Join(rename, rest)
			}
		}
		if p == "." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
			if p == "." {
				continue
			}
			return fmt.Errorf("archive entry %q is outside the destination", hdr.Name)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(p, 0o755); err != nil {
				return err
			}
			root.Chmod(p, mode)
		case tar.TypeSymlink:
			root.Remove(p)
			if err := root.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
			root.Chmod(p, mode)
		}
	}
}
