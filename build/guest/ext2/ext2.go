// Package ext2 writes read-only ext2 filesystem images: the guest's system
// disk (build/guest), which the kernel mounts with its built-in ext4 driver
// and pages in on demand. The image depends only on the files given (sorted
// paths, owner root, time 0, fixed layout), so the same inputs give the
// same bytes.
//
// The layout is the plainest ext2 (revision 1): 4 KiB blocks, 128-byte
// inodes, block maps (direct, indirect and double indirect blocks), linear
// directories, the filetype and sparse_super features, no journal. Files
// are laid out contiguously, each after the one before.
package ext2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// File modes, as in stat(2).
const (
	ModeDir     = 0o040000
	ModeRegular = 0o100000
	ModeSymlink = 0o120000
	modeType    = 0o170000
)

// File is one entry of an image. Parent directories are made as needed
// (mode 0755).
type File struct {
	Path   string // inside the image, without a leading slash
	Mode   uint32 // type and permission bits
	Data   []byte // a regular file's contents, or a symlink's target
	Source string // a regular file is read from here when Data is nil
}

// Options are what an image carries besides its files.
type Options struct {
	Label string   // volume label, up to 16 bytes
	UUID  [16]byte // must not be all zero
}

const (
	blockSize      = 4096
	inodeSize      = 128
	blocksPerGroup = 8 * blockSize
	rootIno        = 2
	firstIno       = 11 // lost+found, then the files
	ptrsPerBlock   = blockSize / 4
	maxBlocks      = 12 + ptrsPerBlock + ptrsPerBlock*ptrsPerBlock
)

type node struct {
	File
	ino      uint32
	size     int64
	children []*node // directories, sorted by name
	parent   *node
	links    uint16
	data     []uint32 // data blocks, in file order
	meta     []uint32 // indirect blocks: [indirect, double, double's indirects…]
}

// Write writes the image of files to f (from offset 0) and sizes f to it.
func Write(f *os.File, files []File, o Options) error {
	if o.UUID == [16]byte{} {
		return errors.New("ext2: the UUID must not be zero")
	}
	if len(o.Label) > 16 {
		return fmt.Errorf("ext2: label %q is longer than 16 bytes", o.Label)
	}
	nodes, err := tree(files)
	if err != nil {
		return err
	}
	l, err := layout(nodes)
	if err != nil {
		return err
	}
	return l.write(f, o)
}

// tree makes the directory tree of files: root first, then every node in
// sorted path order, each parent before its children.
func tree(files []File) ([]*node, error) {
	byPath := map[string]*node{}
	root := &node{File: File{Mode: ModeDir | 0o755}}
	byPath[""] = root
	var mkdir func(p string) (*node, error)
	mkdir = func(p string) (*node, error) {
		if n, ok := byPath[p]; ok {
			if n.Mode&modeType != ModeDir {
				return nil, fmt.Errorf("ext2: %s is not a directory", p)
			}
			return n, nil
		}
		par, err := mkdir(parentOf(p))
		if err != nil {
			return nil, err
		}
		n := &node{File: File{Path: p, Mode: ModeDir | 0o755}, parent: par}
		byPath[p] = n
		return n, nil
	}
	for _, fl := range files {
		p := strings.Trim(path.Clean("/"+fl.Path), "/")
		if p == "" || p == "lost+found" {
			return nil, fmt.Errorf("ext2: bad path %q", fl.Path)
		}
		if len(path.Base(p)) > 255 {
			return nil, fmt.Errorf("ext2: name too long: %s", p)
		}
		switch fl.Mode & modeType {
		case ModeDir, ModeRegular, ModeSymlink:
		default:
			return nil, fmt.Errorf("ext2: %s: unsupported file type %o", p, fl.Mode&modeType)
		}
		if old, ok := byPath[p]; ok && !(old.Mode&modeType == ModeDir && fl.Mode&modeType == ModeDir) {
			return nil, fmt.Errorf("ext2: %s given twice", p)
		}
		par, err := mkdir(parentOf(p))
		if err != nil {
			return nil, err
		}
		fl.Path = p
		if old, ok := byPath[p]; ok {
			old.Mode = fl.Mode
			continue
		}
		byPath[p] = &node{File: fl, parent: par}
	}
	lf := &node{File: File{Path: "lost+found", Mode: ModeDir | 0o700}, parent: root}
	byPath[lf.Path] = lf

	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths) // "" (the root) first; a parent sorts before its children
	nodes := make([]*node, 0, len(paths))
	for _, p := range paths {
		n := byPath[p]
		if n.parent != nil {
			n.parent.children = append(n.parent.children, n)
		}
		nodes = append(nodes, n)
	}
	// Inodes: the root is 2, lost+found 11 (as mke2fs makes them), the
	// rest from 12 in path order.
	next := uint32(firstIno + 1)
	for _, n := range nodes {
		switch n {
		case root:
			n.ino = rootIno
		case lf:
			n.ino = firstIno
		default:
			n.ino = next
			next++
		}
		sort.Slice(n.children, func(i, j int) bool { return path.Base(n.children[i].Path) < path.Base(n.children[j].Path) })
	}
	for _, n := range nodes {
		switch n.Mode & modeType {
		case ModeDir:
			n.links = 2
			for _, c := range n.children {
				if c.Mode&modeType == ModeDir {
					n.links++
				}
			}
		case ModeRegular:
			n.links = 1
			if n.Data != nil || n.Source == "" {
				n.size = int64(len(n.Data))
			} else {
				fi, err := os.Stat(n.Source)
				if err != nil {
					return nil, fmt.Errorf("ext2: %s: %w", n.Path, err)
				}
				if !fi.Mode().IsRegular() {
					return nil, fmt.Errorf("ext2: %s: %s is not a regular file", n.Path, n.Source)
				}
				n.size = fi.Size()
			}
		case ModeSymlink:
			n.links = 1
			n.size = int64(len(n.Data))
			if n.size == 0 || n.size >= blockSize {
				return nil, fmt.Errorf("ext2: %s: symlink target of %d bytes", n.Path, n.size)
			}
		}
	}
	return nodes, nil
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// dirBlocks lays out a directory's entries ("." and ".." first) in
// blocks; an entry never spans two blocks.
func dirBlocks(n *node) [][]byte {
	type ent struct {
		ino  uint32
		name string
		typ  byte
	}
	par := n.parent
	if par == nil {
		par = n
	}
	ents := []ent{{n.ino, ".", 2}, {par.ino, "..", 2}}
	for _, c := range n.children {
		ents = append(ents, ent{c.ino, path.Base(c.Path), fileType(c.Mode)})
	}
	var blocks [][]byte
	var cur []byte
	last := -1 // offset of the last entry in cur
	flush := func() {
		// The last entry's record reaches the end of the block.
		binary.LittleEndian.PutUint16(cur[last+4:], uint16(blockSize-last))
		cur = append(cur, make([]byte, blockSize-len(cur))...)
		blocks = append(blocks, cur)
		cur, last = nil, -1
	}
	for _, e := range ents {
		rec := (8 + len(e.name) + 3) &^ 3
		if len(cur)+rec > blockSize {
			flush()
		}
		last = len(cur)
		b := make([]byte, rec)
		binary.LittleEndian.PutUint32(b, e.ino)
		binary.LittleEndian.PutUint16(b[4:], uint16(rec))
		b[6], b[7] = byte(len(e.name)), e.typ
		copy(b[8:], e.name)
		cur = append(cur, b...)
	}
	flush()
	return blocks
}

func fileType(mode uint32) byte {
	switch mode & modeType {
	case ModeRegular:
		return 1
	case ModeDir:
		return 2
	case ModeSymlink:
		return 7
	}
	return 0
}

// dataBlocks is how many data blocks n holds.
func (n *node) dataBlocks() int64 {
	switch n.Mode & modeType {
	case ModeRegular:
		return (n.size + blockSize - 1) / blockSize
	case ModeSymlink:
		if n.size < 60 {
			return 0 // a fast symlink: the target is in the inode
		}
		return 1
	}
	return 0 // directories are counted from their entries
}

// metaBlocks is how many indirect blocks a file of d data blocks needs.
func metaBlocks(d int64) int64 {
	switch {
	case d <= 12:
		return 0
	case d <= 12+ptrsPerBlock:
		return 1
	}
	return 2 + (d-12-ptrsPerBlock+ptrsPerBlock-1)/ptrsPerBlock
}

type group struct {
	start, end          uint32 // blocks [start, end)
	blockBitmap, inodes uint32 // the block bitmap; the inode bitmap follows it, then the inode table
	super               bool   // holds a copy of the superblock and descriptors
	freeBlocks          uint32
	freeInodes, dirs    uint32
}

type image struct {
	nodes       []*node
	dirs        map[*node][][]byte
	groups      []group
	gdtBlocks   uint32
	ipg         uint32 // inodes per group
	itBlocks    uint32 // inode table blocks per group
	blocks      uint32
	inodes      uint32
	used        map[uint32]bool // data, directory and indirect blocks
	freeBlocks  uint32
	freeInodes  uint32
	inodeOfNode map[uint32]*node
}

func hasSuper(g int) bool {
	if g <= 1 {
		return true
	}
	for _, p := range []int{3, 5, 7} {
		n := p
		for n < g {
			n *= p
		}
		if n == g {
			return true
		}
	}
	return false
}

// layout places the groups' metadata and every block of every file.
func layout(nodes []*node) (*image, error) {
	im := &image{nodes: nodes, dirs: map[*node][][]byte{}, used: map[uint32]bool{}, inodeOfNode: map[uint32]*node{}}
	var data int64
	maxIno := uint32(firstIno)
	for _, n := range nodes {
		maxIno = max(maxIno, n.ino)
		im.inodeOfNode[n.ino] = n
		if n.Mode&modeType == ModeDir {
			im.dirs[n] = dirBlocks(n)
			data += int64(len(im.dirs[n]))
			continue
		}
		d := n.dataBlocks()
		if d > maxBlocks {
			return nil, fmt.Errorf("ext2: %s: too big (%d bytes)", n.Path, n.size)
		}
		data += d + metaBlocks(d)
	}
	// Grow the number of groups until the metadata and data fit; the last
	// group is as long as what it holds.
	for g := 1; ; g++ {
		ipg := (maxIno + uint32(g) - 1) / uint32(g)
		ipg = (ipg + 31) &^ 31 // whole inode table blocks
		itb := ipg * inodeSize / blockSize
		gdt := (uint32(g)*32 + blockSize - 1) / blockSize
		meta := func(i int) int64 {
			m := 2 + int64(itb)
			if hasSuper(i) {
				m += 1 + int64(gdt)
			}
			return m
		}
		full := int64(0) // data blocks the first g-1 groups hold
		for i := 0; i < g-1; i++ {
			full += blocksPerGroup - meta(i)
		}
		last := meta(g-1) + max(0, data-full)
		if last > blocksPerGroup {
			continue
		}
		total := int64(g-1)*blocksPerGroup + last
		if total >= 1<<32 {
			return nil, errors.New("ext2: image too big")
		}
		im.ipg, im.itBlocks, im.gdtBlocks = ipg, itb, gdt
		im.blocks, im.inodes = uint32(total), ipg*uint32(g)
		for i := 0; i < g; i++ {
			gr := group{start: uint32(i) * blocksPerGroup, super: hasSuper(i)}
			gr.end = min(gr.start+blocksPerGroup, im.blocks)
			gr.blockBitmap = gr.start
			if gr.super {
				gr.blockBitmap += 1 + gdt
			}
			im.groups = append(im.groups, gr)
		}
		break
	}
	// Data, in node order: each file's blocks contiguous (but for the
	// groups' metadata), its indirect blocks after its data.
	next := uint32(0)
	g := 0
	alloc := func() uint32 {
		for {
			gr := im.groups[g]
			if next < gr.blockBitmap+2+im.itBlocks {
				next = gr.blockBitmap + 2 + im.itBlocks
			}
			if next < gr.end {
				b := next
				next++
				im.used[b] = true
				return b
			}
			g++
		}
	}
	for _, n := range nodes {
		if n.Mode&modeType == ModeDir {
			for range im.dirs[n] {
				n.data = append(n.data, alloc())
			}
			continue
		}
		d := n.dataBlocks()
		for i := int64(0); i < d; i++ {
			n.data = append(n.data, alloc())
		}
		for i := int64(0); i < metaBlocks(d); i++ {
			n.meta = append(n.meta, alloc())
		}
	}
	// Free counts per group.
	for i := range im.groups {
		gr := &im.groups[i]
		for b := gr.start; b < gr.end; b++ {
			if !im.usedBlock(gr, b) {
				gr.freeBlocks++
			}
		}
		for j := uint32(0); j < im.ipg; j++ {
			ino := uint32(i)*im.ipg + j + 1
			if ino >= firstIno && im.inodeOfNode[ino] == nil {
				gr.freeInodes++
			}
			if n := im.inodeOfNode[ino]; n != nil && n.Mode&modeType == ModeDir {
				gr.dirs++
			}
		}
		im.freeBlocks += gr.freeBlocks
		im.freeInodes += gr.freeInodes
	}
	return im, nil
}

// usedBlock tells whether block b of group gr holds metadata or data.
func (im *image) usedBlock(gr *group, b uint32) bool {
	return b < gr.blockBitmap+2+im.itBlocks || im.used[b]
}

func (im *image) write(f *os.File, o Options) error {
	w := &blockWriter{f: f}
	// Superblock and group descriptors, in group 0 and the backups.
	for gi, gr := range im.groups {
		if !gr.super {
			continue
		}
		sb := im.superblock(o, uint16(gi))
		off := int64(gr.start) * blockSize
		if gi == 0 {
			off += 1024 // after the boot sector
		}
		w.at(off, sb)
		w.at(int64(gr.start+1)*blockSize, im.descriptors())
	}
	for _, gr := range im.groups {
		bb := make([]byte, blockSize)
		for b := gr.start; b < gr.start+blocksPerGroup; b++ {
			if b >= gr.end || im.usedBlock(&gr, b) {
				i := b - gr.start
				bb[i/8] |= 1 << (i % 8)
			}
		}
		w.at(int64(gr.blockBitmap)*blockSize, bb)
		ib := make([]byte, blockSize)
		first := (gr.start / blocksPerGroup) * im.ipg
		for i := uint32(0); i < 8*blockSize; i++ {
			ino := first + i + 1
			if i >= im.ipg || ino < firstIno || im.inodeOfNode[ino] != nil {
				ib[i/8] |= 1 << (i % 8)
			}
		}
		w.at(int64(gr.blockBitmap+1)*blockSize, ib)
	}
	for _, n := range im.nodes {
		if err := im.writeNode(w, n); err != nil {
			return err
		}
	}
	if w.err != nil {
		return w.err
	}
	return f.Truncate(int64(im.blocks) * blockSize)
}

func (im *image) writeNode(w *blockWriter, n *node) error {
	in := make([]byte, inodeSize)
	le := binary.LittleEndian
	le.PutUint16(in[0:], uint16(n.Mode))
	size := n.size
	if n.Mode&modeType == ModeDir {
		size = int64(len(im.dirs[n])) * blockSize
	}
	le.PutUint32(in[4:], uint32(size))
	le.PutUint16(in[26:], n.links)
	le.PutUint32(in[28:], uint32(len(n.data)+len(n.meta))*(blockSize/512))
	switch {
	case n.Mode&modeType == ModeSymlink && len(n.data) == 0:
		copy(in[40:100], n.Data)
	default:
		for i := 0; i < len(n.data) && i < 12; i++ {
			le.PutUint32(in[40+4*i:], n.data[i])
		}
		if len(n.meta) > 0 {
			le.PutUint32(in[40+4*12:], n.meta[0])
			w.at(int64(n.meta[0])*blockSize, pointers(n.data[12:min(len(n.data), 12+ptrsPerBlock)]))
		}
		if len(n.meta) > 1 {
			le.PutUint32(in[40+4*13:], n.meta[1])
			w.at(int64(n.meta[1])*blockSize, pointers(n.meta[2:]))
			rest := n.data[12+ptrsPerBlock:]
			for i, b := range n.meta[2:] {
				w.at(int64(b)*blockSize, pointers(rest[i*ptrsPerBlock:min(len(rest), (i+1)*ptrsPerBlock)]))
			}
		}
	}
	g := (n.ino - 1) / im.ipg
	idx := (n.ino - 1) % im.ipg
	w.at(int64(im.groups[g].blockBitmap+2)*blockSize+int64(idx)*inodeSize, in)

	switch n.Mode & modeType {
	case ModeDir:
		for i, b := range im.dirs[n] {
			w.at(int64(n.data[i])*blockSize, b)
		}
	case ModeSymlink:
		if len(n.data) > 0 {
			w.at(int64(n.data[0])*blockSize, n.Data)
		}
	case ModeRegular:
		return im.writeData(w, n)
	}
	return nil
}

// writeData copies a file's contents into its blocks, a contiguous run at
// a time.
func (im *image) writeData(w *blockWriter, n *node) error {
	var r io.Reader = bytes.NewReader(n.Data)
	if n.Data == nil && n.Source != "" {
		f, err := os.Open(n.Source)
		if err != nil {
			return fmt.Errorf("ext2: %s: %w", n.Path, err)
		}
		defer f.Close()
		r = f
	}
	left := n.size
	buf := make([]byte, 1<<20)
	for i := 0; i < len(n.data); {
		// A run of consecutive blocks, written in chunks.
		j := i + 1
		for j < len(n.data) && n.data[j] == n.data[j-1]+1 {
			j++
		}
		off := int64(n.data[i]) * blockSize
		run := min(left, int64(j-i)*blockSize)
		for run > 0 {
			c := buf[:min(run, int64(len(buf)))]
			if _, err := io.ReadFull(r, c); err != nil {
				return fmt.Errorf("ext2: %s: %w (did it change while the image was written?)", n.Path, err)
			}
			w.at(off, c)
			off += int64(len(c))
			run -= int64(len(c))
			left -= int64(len(c))
		}
		i = j
	}
	return nil
}

func pointers(bs []uint32) []byte {
	b := make([]byte, blockSize)
	for i, x := range bs {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

func (im *image) superblock(o Options, groupNr uint16) []byte {
	sb := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], im.inodes)
	le.PutUint32(sb[4:], im.blocks)
	le.PutUint32(sb[12:], im.freeBlocks)
	le.PutUint32(sb[16:], im.freeInodes)
	le.PutUint32(sb[20:], 0) // first data block: 0 with 4 KiB blocks
	le.PutUint32(sb[24:], 2) // block size 1024 << 2
	le.PutUint32(sb[28:], 2) // fragment size
	le.PutUint32(sb[32:], blocksPerGroup)
	le.PutUint32(sb[36:], blocksPerGroup)
	le.PutUint32(sb[40:], im.ipg)
	le.PutUint16(sb[54:], 0xFFFF) // max mount count: no forced checks
	le.PutUint16(sb[56:], 0xEF53) // magic
	le.PutUint16(sb[58:], 1)      // state: clean
	le.PutUint16(sb[60:], 1)      // errors: continue
	le.PutUint32(sb[76:], 1)      // revision 1 (dynamic inodes)
	le.PutUint32(sb[84:], firstIno)
	le.PutUint16(sb[88:], inodeSize)
	le.PutUint16(sb[90:], groupNr)
	le.PutUint32(sb[96:], 0x2)  // incompat: filetype
	le.PutUint32(sb[100:], 0x1) // ro_compat: sparse_super
	copy(sb[104:120], o.UUID[:])
	copy(sb[120:136], o.Label)
	return sb
}

func (im *image) descriptors() []byte {
	b := make([]byte, im.gdtBlocks*blockSize)
	le := binary.LittleEndian
	for i, gr := range im.groups {
		d := b[32*i:]
		le.PutUint32(d[0:], gr.blockBitmap)
		le.PutUint32(d[4:], gr.blockBitmap+1)
		le.PutUint32(d[8:], gr.blockBitmap+2)
		le.PutUint16(d[12:], uint16(gr.freeBlocks))
		le.PutUint16(d[14:], uint16(gr.freeInodes))
		le.PutUint16(d[16:], uint16(gr.dirs))
	}
	return b
}

// blockWriter writes at offsets and keeps the first error.
type blockWriter struct {
	f   *os.File
	err error
}

func (w *blockWriter) at(off int64, b []byte) {
	if w.err == nil {
		_, w.err = w.f.WriteAt(b, off)
	}
}
