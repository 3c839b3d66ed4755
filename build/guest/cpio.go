package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// An entry of a newc cpio archive (the initramfs format).
type entry struct {
	Name   string // path without leading slash
	Mode   uint32 // type and permission bits, as in stat(2)
	Data   []byte // regular file contents, or symlink target
	Source string // regular file read from here when Data is nil
	Rdev   [2]uint32
}

const (
	sIFDIR  = 0o040000
	sIFREG  = 0o100000
	sIFLNK  = 0o120000
	sIFCHR  = 0o020000
	permDir = 0o755
)

// archive collects entries; writing sorts them and fixes owners and times,
// so the same inputs give the same bytes.
type archive map[string]*entry

func (a archive) dir(name string) {
	name = strings.Trim(name, "/")
	for p := name; p != "" && p != "."; p = parent(p) {
		if _, ok := a[p]; !ok {
			a[p] = &entry{Name: p, Mode: sIFDIR | permDir}
		}
	}
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (a archive) file(name, source string, perm uint32) {
	name = strings.Trim(name, "/")
	a.dir(parent(name))
	a[name] = &entry{Name: name, Mode: sIFREG | perm, Source: source}
}

func (a archive) data(name string, b []byte, perm uint32) {
	name = strings.Trim(name, "/")
	a.dir(parent(name))
	a[name] = &entry{Name: name, Mode: sIFREG | perm, Data: b}
}

func (a archive) symlink(name, target string) {
	name = strings.Trim(name, "/")
	a.dir(parent(name))
	a[name] = &entry{Name: name, Mode: sIFLNK | 0o777, Data: []byte(target)}
}

func (a archive) chardev(name string, perm, major, minor uint32) {
	name = strings.Trim(name, "/")
	a.dir(parent(name))
	a[name] = &entry{Name: name, Mode: sIFCHR | perm, Rdev: [2]uint32{major, minor}}
}

// write emits the archive in newc format: sorted paths (a directory before
// what it holds), uid/gid 0, mtime 0, inodes numbered in order.
func (a archive) write(w io.Writer) error {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	sort.Strings(names)
	bw := bufio.NewWriterSize(w, 1<<20)
	var off int64
	put := func(b []byte) {
		bw.Write(b)
		off += int64(len(b))
	}
	pad := func() {
		if r := off % 4; r != 0 {
			put(make([]byte, 4-r))
		}
	}
	header := func(ino int, e *entry, size int) {
		nlink := 1
		if e.Mode&0o170000 == sIFDIR {
			nlink = 2
		}
		put(fmt.Appendf(nil, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.Mode, 0, 0, nlink, 0, size, 0, 0, e.Rdev[0], e.Rdev[1], len(e.Name)+1, 0))
		put(append([]byte(e.Name), 0))
		pad()
	}
	for i, n := range names {
		e := a[n]
		body := e.Data
		if e.Mode&0o170000 == sIFREG && body == nil && e.Source != "" {
			b, err := os.ReadFile(e.Source)
			if err != nil {
				return err
			}
			body = b
		}
		header(i+1, e, len(body))
		put(body)
		pad()
	}
	header(len(names)+1, &entry{Name: "TRAILER!!!"}, 0)
	return bw.Flush()
}
