//go:build linux

package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"syscall"

	"golang.org/x/sys/unix"
)

// ChangeKind says how a path differs from the layers below.
type ChangeKind int

// The kinds, numbered as the Engine API numbers them.
const (
	Modified ChangeKind = 0
	Added    ChangeKind = 1
	Deleted  ChangeKind = 2
)

// Change is one path of a writable layer (docker diff).
type Change struct {
	Path string // absolute, in the container
	Kind ChangeKind
	// Empty is set for a regular file of size 0 or a directory added
	// with nothing below it (the runtime's own mount points look so).
	Empty bool
}

// Changes lists what key's writable layer changes in the layers below, in
// path order: a whiteout is a deletion, a path that exists below is a
// modification (a directory only if its metadata changed or something
// below it did), anything else an addition.
func (s *Store) Changes(key string) ([]Change, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	meta, err := s.keyMeta(key)
	if err != nil {
		return nil, err
	}
	lower, err := s.LayerDirs(meta.ChainID)
	if err != nil {
		return nil, err
	}
	upper := filepath.Join(s.keyDir(key), "diff")
	// below finds rel in the layers under the writable one, top first,
	// stopping at a whiteout.
	below := func(rel string) (os.FileInfo, bool) {
		for i := len(lower) - 1; i >= 0; i-- {
			fi, err := os.Lstat(filepath.Join(lower[i], rel))
			if err != nil {
				continue
			}
			if isWhiteout(fi) {
				return nil, false
			}
			return fi, true
		}
		return nil, false
	}
	byPath := map[string]*Change{}
	var out []*Change
	add := func(c Change) {
		if old, ok := byPath[c.Path]; ok {
			if c.Kind != Modified {
				*old = c
			}
			return
		}
		cc := c
		byPath[c.Path] = &cc
		out = append(out, &cc)
	}
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel := strings.TrimPrefix(p, upper)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		c := Change{Path: rel}
		lfi, exists := below(rel)
		switch {
		case isWhiteout(fi):
			c.Kind = Deleted
		case !exists:
			c.Kind = Added
			c.Empty = (fi.Mode().IsRegular() && fi.Size() == 0) || (fi.IsDir() && emptyDir(p))
		case fi.IsDir() && lfi.IsDir() && !isOpaque(p) && fi.Mode() == lfi.Mode() && fi.ModTime().Equal(lfi.ModTime()):
			return nil // copied up for what is below it: listed if that changed
		default:
			c.Kind = Modified
		}
		add(c)
		// Every directory above a change is changed too, as dockerd
		// reports it (overlay copied it up).
		for d := path.Dir(rel); d != "/"; d = path.Dir(d) {
			add(Change{Path: d, Kind: Modified})
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("changes of %s: %w", key, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	res := make([]Change, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res, nil
}

func isWhiteout(fi os.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

func isOpaque(p string) bool {
	v := make([]byte, 1)
	n, err := unix.Lgetxattr(p, opaqueXattr, v)
	return err == nil && n == 1 && v[0] == 'y'
}

func emptyDir(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}
