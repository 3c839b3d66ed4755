// Package buildctx writes a folder as a docker build context, as the docker
// CLI does: .dockerignore applied, symlinks archived as links (never
// followed), owners reset. The berth CLI and the desktop app both send it.
package buildctx

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Tar streams directory dir as a build context: a tar without what
// .dockerignore excludes (the Dockerfile and .dockerignore always go). A Dockerfile
// outside dir is added under a name of its own. Owners are root, as with
// docker; on Windows every file is made 0755, as docker does.
func Tar(dir, file string) (io.ReadCloser, string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if !st.IsDir() {
		return nil, "", fmt.Errorf("unable to prepare context: %s is not a directory", dir)
	}
	var excludes []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("error reading .dockerignore: %w", err)
		}
	}
	if file == "" {
		file = filepath.Join(dir, "Dockerfile")
	}
	absDir, _ := filepath.Abs(dir)
	absFile, _ := filepath.Abs(file)
	rel, err := filepath.Rel(absDir, absFile)
	var outside []byte
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		if outside, err = os.ReadFile(file); err != nil {
			return nil, "", fmt.Errorf("unable to open Dockerfile: %w", err)
		}
		var b [8]byte
		rand.Read(b[:])
		rel = ".dockerfile." + hex.EncodeToString(b[:])
	} else if _, err := os.Stat(absFile); err != nil {
		return nil, "", fmt.Errorf("unable to prepare context: %w", err)
	}
	rel = filepath.ToSlash(rel)
	keep := map[string]bool{rel: true, ".dockerignore": true}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, "", fmt.Errorf("invalid .dockerignore: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		// An outside Dockerfile is named in .dockerignore too, so the
		// engine drops it from the context once read (as docker does).
		cw := &contextWriter{tw: tw, pm: pm, keep: keep}
		if outside != nil {
			cw.ignoreExtra = rel
		}
		err := cw.write(absDir)
		if err == nil && outside != nil {
			err = cw.add(rel, outside)
			if err == nil && !cw.wroteIgnore {
				err = cw.add(".dockerignore", []byte(rel+"\n"))
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, rel, nil
}

type contextWriter struct {
	tw          *tar.Writer
	pm          *patternmatcher.PatternMatcher
	keep        map[string]bool
	ignoreExtra string // appended to .dockerignore
	wroteIgnore bool
}

func (cw *contextWriter) add(name string, data []byte) error {
	if err := cw.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now().Truncate(time.Second),
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := cw.tw.Write(data)
	return err
}

func (cw *contextWriter) write(root string) error {
	tw, pm, keep := cw.tw, cw.pm, cw.keep
	parents := map[string]patternmatcher.MatchInfo{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		parent := filepath.ToSlash(filepath.Dir(rel))
		if parent == "." {
			parent = ""
		}
		matched, info, err := pm.MatchesUsingParentResults(rel, parents[parent])
		if err != nil {
			return err
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if matched && !keep[rel] {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, ModTime: fi.ModTime().Truncate(time.Second), Mode: int64(fi.Mode().Perm()), Format: tar.FormatPAX}
		if runtime.GOOS == "windows" {
			h.Mode = 0o755
		}
		switch {
		case rel == ".dockerignore" && fi.Mode().IsRegular() && cw.ignoreExtra != "":
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			cw.wroteIgnore = true
			return cw.add(rel, append(b, []byte("\n"+cw.ignoreExtra+"\n")...))
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, filepath.ToSlash(target)
		default:
			return nil // sockets, devices, fifos: not sent, as docker does
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("build context: %w", err)
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
}
