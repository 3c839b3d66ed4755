// Command guest builds the VM's boot files from Debian packages and Berth's
// binaries. It is `make guest`:
//
//	go run ./build/guest -arch amd64 -bin bin -out build/guest/out/amd64
//
// Three files boot the VM: the kernel (linux-image-cloud-ARCH), a small
// initramfs and the system disk. The initramfs holds only what PID 1
// (berth-init) needs before it mounts the system disk: itself and the
// modules of the host channel and of a virtio disk. The system disk
// (system.img, a read-only ext2 image the kernel's built-in ext4 driver
// mounts, so it pages in on demand) holds the rest: Berth's binaries
// (binaries.txt), the other modules, mke2fs/e2fsck/resize2fs with their
// libraries and loader, busybox for `berth shell`, and the images
// preloaded on first boot. The initramfs links every path of the system
// disk into its own tree (/usr → /system/usr …), so the guest sees one
// tree.
//
// The packages are pinned with their sha256 in guest.lock and downloaded
// once with `apt-get download` into build/guest/cache/ARCH. What comes of
// them (the base: modules, programs, busybox, config) is reproducible and
// its sha256 is pinned in guest.lock too; berth-init, the binaries and
// the preloaded images are added on top. `-update-lock` re-resolves the
// packages to the newest Debian has and rewrites the lock. It also writes
// wsl-rootfs.tar.gz, the distro Windows' WSL driver imports (wsl.go).
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/build/guest/ext2"
)

// Paths inside the guest that guest-agent/pid1 reads: a load order per
// group of modules.txt (etc/berth/modules.GROUP), the images to load on
// first boot, Berth's binaries, and where the system disk is mounted.
const (
	moduleLists = "etc/berth/modules."
	imagesDir   = "usr/share/berth/images" // docker-archive tars loaded on first boot
	binDir      = "usr/lib/berth"          // binaries.txt, each next to the others
	systemMount = "system"
)

// moduleGroups are modules.txt's sections, in the order pid1 loads them.
var moduleGroups = []string{"boot", "nft", "vsock", "net", "shares", "engine", "late"}

// initrdGroups are the module groups PID 1 loads before the system disk is
// mounted (a virtio disk needs them; so does the host channel, which
// should not wait for the disk): they are in the initramfs, the other
// groups on the system disk.
var initrdGroups = []string{"boot", "vsock"}

// The packages the image is made of; the kernel meta package is resolved to
// the versioned one it depends on.
func wanted(arch string) []string {
	return []string{"linux-image-cloud-" + arch, "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libc6", "busybox-static"}
}

// Programs copied with their shared libraries and loader.
var programs = []string{"sbin/mke2fs", "sbin/e2fsck", "sbin/resize2fs"}

var multiarch = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

func main() {
	var (
		arch     = flag.String("arch", runtime.GOARCH, "guest architecture: amd64 or arm64")
		bin      = flag.String("bin", "bin", "directory of Berth's binaries built for -arch: berth-init and those binaries.txt lists")
		out      = flag.String("out", "", "output directory (default build/guest/out/ARCH)")
		images   = flag.String("images", "", "comma-separated docker-archive .tar files to preload on first boot (e.g. bin/hello.tar)")
		compress = flag.String("compress", "none", "initramfs compression: none or lz4")
		update   = flag.Bool("update-lock", false, "resolve the newest packages and rewrite guest.lock")
	)
	flag.Parse()
	dir := "build/guest"
	if *out == "" {
		*out = filepath.Join(dir, "out", *arch)
	}
	if err := build(dir, *arch, *bin, *out, *images, *compress, *update); err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
		os.Exit(1)
	}
}

// readBinaries reads binaries.txt: the names of Berth's binaries that the
// guest carries (in /usr/lib/berth, next to each other), one a line.
func readBinaries(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.ContainsAny(l, "/ \t") || l == "berth-init" {
			return nil, fmt.Errorf("%s: %q: want a binary's name (berth-init is the initramfs' /init, not listed)", path, l)
		}
		out = append(out, l)
	}
	if !slices.Contains(out, "berth-agent") {
		return nil, fmt.Errorf("%s: berth-agent is not listed", path)
	}
	return out, nil
}

func build(dir, arch, bin, out, images, compress string, update bool) error {
	triplet, ok := multiarch[arch]
	if !ok {
		return fmt.Errorf("unsupported arch %q", arch)
	}
	bins, err := readBinaries(filepath.Join(dir, "binaries.txt"))
	if err != nil {
		return err
	}
	initBin := filepath.Join(bin, "berth-init")
	for _, p := range append([]string{"berth-init"}, bins...) {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			return fmt.Errorf("binary for the guest: %w (make build, or make cross for another arch)", err)
		}
	}
	lockPath := filepath.Join(dir, "guest.lock")
	lock, err := readLock(lockPath)
	if err != nil {
		return err
	}
	cache := filepath.Join(dir, "cache", arch)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	var debs []string
	if update {
		debs, err = resolve(lock, arch, cache)
	} else {
		debs, err = fetch(lock, arch, cache)
	}
	if err != nil {
		return err
	}

	root, err := os.MkdirTemp("", "berth-guest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for _, d := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", d, root).CombinedOutput(); err != nil {
			return fmt.Errorf("extract %s: %v: %s", d, err, out)
		}
	}

	kver, kernel, err := findKernel(root)
	if err != nil {
		return err
	}
	base := archive{}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "data", "mnt", "sbin", systemMount, imagesDir} {
		base.dir(d)
	}
	// The kernel opens /dev/console for /init's stdio before /init mounts
	// devtmpfs.
	base.chardev("dev/console", 0o600, 5, 1)
	base.chardev("dev/null", 0o666, 1, 3)
	early, err := addModules(base, root, kver, filepath.Join(dir, "modules.txt"))
	if err != nil {
		return err
	}
	for _, p := range programs {
		if err := addProgram(base, root, p, triplet); err != nil {
			return err
		}
	}
	base.file("etc/mke2fs.conf", filepath.Join(root, "etc/mke2fs.conf"), 0o644)
	// busybox (static) is `berth shell`'s shell and tools; PID 1 makes its
	// applet links in /bin when the first shell opens.
	base.file("bin/busybox", filepath.Join(root, "bin/busybox"), 0o755)

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var baseBuf bytes.Buffer
	if err := base.write(&baseBuf); err != nil {
		return err
	}
	kernelBytes, err := os.ReadFile(kernel)
	if err != nil {
		return err
	}
	outputs := map[string]string{"vmlinuz": sum(kernelBytes), "base.cpio": sum(baseBuf.Bytes())}
	for name, got := range outputs {
		key := arch + " out:" + name
		if update {
			lock.set(key, "-", got)
		} else if want := lock.sha(key); want != got {
			return fmt.Errorf("%s: sha256 %s, guest.lock pins %s: not what the lock pins (after changing modules.txt or the recipe, run -update-lock)", name, got, want)
		}
	}

	// The base splits into the initramfs and the system disk; Berth's
	// binaries and the preloaded images join the system disk.
	initrd, system := split(base, early)
	initrd.file("init", initBin, 0o755)
	for _, b := range bins {
		system.file(filepath.Join(binDir, b), filepath.Join(bin, b), 0o755)
	}
	var preload []string
	if images != "" {
		for _, t := range strings.Split(images, ",") {
			if _, err := os.Stat(t); err != nil {
				return fmt.Errorf("preload image: %w", err)
			}
			system.file(filepath.Join(imagesDir, filepath.Base(t)), t, 0o644)
			preload = append(preload, filepath.Base(t))
		}
	}
	if err := linkSystem(initrd, system); err != nil {
		return err
	}

	var all bytes.Buffer
	if err := initrd.write(&all); err != nil {
		return err
	}
	initrdPath := filepath.Join(out, "initrd.img")
	f, err := os.Create(initrdPath + ".tmp")
	if err != nil {
		return err
	}
	if err := compressTo(f, all.Bytes(), compress); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(initrdPath+".tmp", initrdPath); err != nil {
		return err
	}
	systemPath := filepath.Join(out, "system.img")
	if err := writeSystem(systemPath, system); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(out, "vmlinuz"), kernelBytes); err != nil {
		return err
	}
	// Apple's boot loader on arm64 boots only an uncompressed Image
	// (QEMU boots either). Debian 12's arm64 vmlinuz already is one; a
	// gzip'd one is uncompressed next to it.
	if arch == "arm64" {
		switch {
		case isArm64Image(kernelBytes):
		case bytes.HasPrefix(kernelBytes, []byte{0x1f, 0x8b}):
			img, err := gunzip(kernelBytes)
			if err != nil || !isArm64Image(img) {
				return fmt.Errorf("uncompress the arm64 kernel: not a gzip'd Image (%v)", err)
			}
			if err := writeFile(filepath.Join(out, "Image"), img); err != nil {
				return err
			}
		default:
			return fmt.Errorf("the arm64 kernel is neither an Image nor a gzip'd one: Apple Virtualization cannot boot it")
		}
	}
	wslBins := map[string]string{}
	for _, b := range bins {
		wslBins[b] = filepath.Join(bin, b)
	}
	if err := writeWSLRootfs(filepath.Join(out, "wsl-rootfs.tar.gz"), filepath.Join(root, "bin/busybox"), wslBins); err != nil {
		return err
	}
	// x86: the kernel uncompressed, as an ELF that QEMU boots through its
	// PVH entry point: no decompression at every boot (~0.3 s under
	// software emulation).
	var vmlinuxSum string
	if arch == "amd64" {
		vmlinux, err := extractVmlinux(kernelBytes)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(out, "vmlinux"), vmlinux); err != nil {
			return err
		}
		vmlinuxSum = sum(vmlinux)
	}
	sums := map[string]string{"vmlinuz": outputs["vmlinuz"], "vmlinux": vmlinuxSum, "base.cpio": outputs["base.cpio"],
		"initrd.img": fileSHA(initrdPath), "system.img": fileSHA(systemPath), "berth-init": fileSHA(initBin)}
	for _, b := range bins {
		sums[b] = fileSHA(filepath.Join(bin, b))
	}
	manifest := map[string]any{
		"arch": arch, "kernel_version": kver, "compression": compress, "preload": preload, "binaries": bins,
		"sha256": sums, "packages": lock.entries(arch),
	}
	mb, _ := json.MarshalIndent(manifest, "", "  ")
	if err := writeFile(filepath.Join(out, "manifest.json"), append(mb, '\n')); err != nil {
		return err
	}
	if update {
		if err := lock.write(lockPath); err != nil {
			return err
		}
	}
	fi, _ := os.Stat(initrdPath)
	si, _ := os.Stat(systemPath)
	fmt.Fprintf(os.Stderr, "guest %s: kernel %s, initrd %d KiB (%s), system disk %d KiB, in %s\n",
		arch, kver, fi.Size()>>10, compress, si.Size()>>10, out)
	return nil
}

// split divides the base between the initramfs and the system disk. The
// initramfs keeps what PID 1 reads before the system disk is mounted:
// the device nodes and mount points, the early modules, the module lists
// and modprobe's files; the rest goes to the system disk.
func split(base archive, early map[string]bool) (initrd, system archive) {
	initrd, system = archive{}, archive{}
	for name, e := range base {
		switch {
		case e.Mode&0o170000 == sIFDIR:
			// Directories go with what they hold (file and data make
			// their parents); empty ones (mount points) to the initramfs,
			// the images' directory to the system disk.
			if name == imagesDir {
				system.dir(name)
			} else if !hasChildren(base, name) {
				initrd.dir(name)
			}
		case strings.HasPrefix(name, "dev/"), strings.HasPrefix(name, "etc/berth/"), strings.HasPrefix(name, "etc/modprobe.d/"),
			strings.HasSuffix(name, "/modules.dep"), early[name]:
			initrd[name] = e
			initrd.dir(parent(name))
		default:
			system[name] = e
			system.dir(parent(name))
		}
	}
	// /bin stays the initramfs' own: PID 1 writes busybox's applet links
	// there.
	initrd.dir("bin")
	return initrd, system
}

func hasChildren(a archive, dir string) bool {
	for n := range a {
		if strings.HasPrefix(n, dir+"/") {
			return true
		}
	}
	return false
}

// linkSystem makes every path of the system disk visible in the
// initramfs' tree: a path the initramfs does not have becomes a symlink
// into /system (/usr → /system/usr); a directory both have is linked
// entry by entry.
func linkSystem(initrd, system archive) error {
	names := make([]string, 0, len(system))
	for n := range system {
		names = append(names, n)
	}
	sort.Strings(names) // a directory before what it holds
	linked := map[string]bool{}
	for _, n := range names {
		if linked[parent(n)] {
			linked[n] = true
			continue
		}
		e, ok := initrd[n]
		switch {
		case !ok:
			initrd.symlink(n, "/"+systemMount+"/"+n)
			linked[n] = true
		case e.Mode&0o170000 != sIFDIR || system[n].Mode&0o170000 != sIFDIR:
			return fmt.Errorf("%s is both in the initramfs and on the system disk", n)
		}
	}
	return nil
}

// writeSystem writes the system disk: a read-only ext2 image of system,
// its UUID derived from its contents.
func writeSystem(path string, system archive) error {
	names := make([]string, 0, len(system))
	for n := range system {
		names = append(names, n)
	}
	sort.Strings(names)
	var files []ext2.File
	h := sha256.New()
	for _, n := range names {
		e := system[n]
		files = append(files, ext2.File{Path: n, Mode: e.Mode, Data: e.Data, Source: e.Source})
		fmt.Fprintf(h, "%s %o %d\n", n, e.Mode, len(e.Data))
		h.Write(e.Data)
		if e.Source != "" {
			src, err := os.Open(e.Source)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	var o ext2.Options
	copy(o.UUID[:], h.Sum(nil))
	o.UUID[6] = o.UUID[6]&0x0f | 0x50 // a name-based UUID (version 5, RFC 9562)
	o.UUID[8] = o.UUID[8]&0x3f | 0x80
	o.Label = "berth-system"
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := ext2.Write(f, files, o); err != nil {
		f.Close()
		return fmt.Errorf("system disk: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// isArm64Image: the arm64 boot protocol's magic "ARM\x64" at 0x38.
func isArm64Image(b []byte) bool { return len(b) > 0x3c && string(b[0x38:0x3c]) == "ARM\x64" }

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// compressTo writes the archive compressed as the kernel unpacks it (lz4
// in the legacy frame format that the kernel reads).
func compressTo(w io.Writer, b []byte, how string) error {
	switch how {
	case "none":
		_, err := w.Write(b)
		return err
	case "lz4":
		cmd := exec.Command("lz4", "-l", "-9", "-c", "-q")
		cmd.Stdin, cmd.Stdout = bytes.NewReader(b), w
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("lz4: %v: %s", err, stderr.String())
		}
		return nil
	}
	return fmt.Errorf("unknown compression %q", how)
}

// extractVmlinux returns the ELF kernel inside an x86 bzImage: the payload
// (boot protocol ≥ 2.08: offset and length in the setup header) is an LZ4
// legacy frame in Debian's kernels. It must carry the PVH entry note.
func extractVmlinux(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(bz[0x206:]) < 0x208 {
		return nil, errors.New("vmlinuz: not a bzImage with boot protocol 2.08 or later")
	}
	setup := (int(bz[0x1f1]) + 1) * 512
	off := setup + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if off+n > len(bz) || n < 4 {
		return nil, errors.New("vmlinuz: payload out of bounds")
	}
	// The build appends the uncompressed size (4 bytes) to the frame.
	payload := bz[off : off+n-4]
	if !bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}) {
		return nil, fmt.Errorf("vmlinuz: payload is not LZ4 (starts % x)", payload[:4])
	}
	cmd := exec.Command("lz4", "-d", "-c", "-q")
	var out, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(payload), &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vmlinuz: lz4: %v: %s", err, stderr.String())
	}
	f, err := elf.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("vmlinuz: payload is not an ELF kernel: %w", err)
	}
	if !hasPVHNote(f) {
		return nil, errors.New("vmlinuz: the kernel has no PVH entry point (CONFIG_PVH)")
	}
	return out.Bytes(), nil
}

// hasPVHNote finds XEN_ELFNOTE_PHYS32_ENTRY (type 18, owner "Xen").
func hasPVHNote(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz, dsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
			name := b[12:min(len(b), 12+int(nsz))]
			if typ == 18 && bytes.HasPrefix(name, []byte("Xen")) {
				return true
			}
			adv := 12 + (int(nsz)+3)&^3 + (int(dsz)+3)&^3
			if adv > len(b) {
				break
			}
			b = b[adv:]
		}
	}
	return false
}

func findKernel(root string) (version, path string, err error) {
	m, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return "", "", fmt.Errorf("want one kernel in the packages, found %v", m)
	}
	return strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-"), m[0], nil
}

// addModules copies the modules named in list (with what they depend on)
// and writes the load orders: each module after its dependencies. It
// returns the modules of initrdGroups (their paths in a).
func addModules(a archive, root, kver, list string) (early map[string]bool, err error) {
	modRoot := filepath.Join(root, "lib", "modules", kver)
	paths := map[string]string{} // module name → path under root
	early = map[string]bool{}
	err = filepath.WalkDir(modRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			paths[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	groups, err := readModuleList(list)
	if err != nil {
		return nil, err
	}
	// Modules the kernel has built in (ACPI's button on arm64 …) need no
	// loading: they count as loaded.
	loaded := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modRoot, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			loaded[modName(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	depsOf := map[string][]string{} // module → its direct dependencies
	relOf := map[string]string{}    // module → path under /lib/modules/KVER
	for _, g := range moduleGroups {
		// Modules go in levels: each depends only on modules of earlier
		// levels (or groups), so pid1 loads a level's modules in parallel.
		var levels [][]string
		level := map[string]int{} // this group's modules; earlier groups count as 0
		var visit func(name string, stack []string) error
		visit = func(name string, stack []string) error {
			name = modName(name)
			if loaded[name] {
				return nil
			}
			for _, s := range stack {
				if s == name {
					return fmt.Errorf("module dependency cycle: %v", append(stack, name))
				}
			}
			p, ok := paths[name]
			if !ok {
				return fmt.Errorf("module %s: not in kernel %s (needed by %v)", name, kver, stack)
			}
			deps, err := moduleDeps(p)
			if err != nil {
				return err
			}
			lv := 0
			for _, d := range deps {
				if err := visit(d, append(stack, name)); err != nil {
					return err
				}
				lv = max(lv, level[modName(d)]+1)
			}
			loaded[name] = true
			level[name] = lv
			depsOf[name] = deps
			relOf[name], _ = filepath.Rel(modRoot, p)
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			a.data(rel, stripSignature(b), 0o644)
			if slices.Contains(initrdGroups, g) {
				early[rel] = true
			}
			for len(levels) <= lv {
				levels = append(levels, nil)
			}
			levels[lv] = append(levels[lv], "/"+rel)
			return nil
		}
		for _, m := range groups[g] {
			if err := visit(m, nil); err != nil {
				return nil, err
			}
		}
		name := moduleLists + g
		var list strings.Builder
		for i, l := range levels {
			if i > 0 {
				list.WriteString("\n") // a blank line ends a level
			}
			list.WriteString(strings.Join(l, "\n") + "\n")
		}
		a.data(name, []byte(list.String()), 0o644)
	}
	return early, writeModprobeFiles(a, root, kver, modRoot, depsOf, relOf)
}

// writeModprobeFiles lets the kernel load what it asks for on demand
// (mount -t overlay, a bridge link, an nftables expression …) through
// berth-init's modprobe (guest-agent/pid1.Modprobe; busybox's would take
// a module PID 1 is still loading for loaded): modules.dep with full
// dependency lists, and each module's aliases (fs-overlay,
// rtnl-link-bridge …) in /etc/modprobe.d.
func writeModprobeFiles(a archive, root, kver, modRoot string, depsOf map[string][]string, relOf map[string]string) error {
	var all func(name string, seen map[string]bool, out *[]string)
	all = func(name string, seen map[string]bool, out *[]string) {
		for _, d := range depsOf[name] {
			d = modName(d)
			if relOf[d] == "" {
				continue // built into the kernel
			}
			if !seen[d] {
				seen[d] = true
				*out = append(*out, relOf[d])
				all(d, seen, out)
			}
		}
	}
	names := make([]string, 0, len(relOf))
	for n := range relOf {
		names = append(names, n)
	}
	sort.Strings(names)
	var dep, aliases strings.Builder
	for _, n := range names {
		var deps []string
		all(n, map[string]bool{}, &deps)
		fmt.Fprintf(&dep, "%s: %s\n", relOf[n], strings.Join(deps, " "))
		al, err := moduleAliases(filepath.Join(modRoot, relOf[n]))
		if err != nil {
			return err
		}
		for _, x := range al {
			fmt.Fprintf(&aliases, "alias %s %s\n", x, n)
		}
	}
	a.data(filepath.Join("lib", "modules", kver, "modules.dep"), []byte(dep.String()), 0o644)
	// /sbin/modprobe (berth-init) is linked by PID 1 once it runs: until
	// then the kernel's requests fail at once instead of waiting for the
	// initramfs and starting a program each.
	a.data("etc/modprobe.d/berth.conf", []byte(aliases.String()), 0o644)
	return nil
}

// moduleAliases reads a module's aliases from its .modinfo.
func moduleAliases(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	b, err := sec.Data()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("alias=")); ok && len(v) > 0 {
			out = append(out, string(v))
		}
	}
	return out, nil
}

// stripSignature drops the signature appended to a module. The kernel
// does not enforce signatures here but still verifies a present one, in
// software, which under emulation costs more than loading the module; an
// unsigned module just marks the kernel tainted.
func stripSignature(b []byte) []byte {
	const marker = "~Module signature appended~\n"
	if !bytes.HasSuffix(b, []byte(marker)) {
		return b
	}
	rest := b[:len(b)-len(marker)]
	// struct module_signature: algo, hash, id_type, signer_len, key_id_len,
	// pad[3], sig_len (big-endian u32): 12 bytes before the marker.
	if len(rest) < 12 {
		return b
	}
	info := rest[len(rest)-12:]
	n := int(info[3]) + int(info[4]) + int(binary.BigEndian.Uint32(info[8:]))
	if n+12 > len(rest) {
		return b
	}
	return rest[:len(rest)-12-n]
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// readModuleList reads modules.txt: "[boot]", "[engine]" and "[late]"
// sections of module names, # comments.
func readModuleList(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]string{}
	group := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "["):
			group = strings.Trim(line, "[]")
			if !slices.Contains(moduleGroups, group) {
				return nil, fmt.Errorf("%s: unknown section %s (want one of %v)", path, line, moduleGroups)
			}
		case group == "":
			return nil, fmt.Errorf("%s: module %s outside a section", path, line)
		default:
			out[group] = append(out[group], line)
		}
	}
	return out, sc.Err()
}

// moduleDeps reads the "depends=" entry of a module's .modinfo section.
func moduleDeps(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo", path)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// addProgram copies a dynamically linked program with its loader and the
// closure of its shared libraries, each at the path the loader looks in.
func addProgram(a archive, root, prog, triplet string) error {
	libDirs := []string{"lib/" + triplet, "usr/lib/" + triplet, "lib", "usr/lib"}
	find := func(lib string) (string, error) {
		for _, d := range libDirs {
			p := filepath.Join(root, d, lib)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s: shared library %s not in the packages", prog, lib)
	}
	src := filepath.Join(root, prog)
	a.file("usr/"+prog, src, 0o755)
	seen := map[string]bool{}
	queue := []string{src}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		f, err := elf.Open(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		libs, err := f.ImportedLibraries()
		if interp := f.Progs; err == nil {
			for _, ph := range interp {
				if ph.Type == elf.PT_INTERP {
					b := make([]byte, ph.Filesz)
					ph.ReadAt(b, 0)
					ip := strings.TrimRight(string(b), "\x00")
					real, err := find(filepath.Base(ip))
					if err != nil {
						f.Close()
						return err
					}
					a.file(ip, real, 0o755)
				}
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, l := range libs {
			if seen[l] {
				continue
			}
			seen[l] = true
			real, err := find(l)
			if err != nil {
				return err
			}
			// Copied as a file (not the package's symlink chain) where the
			// loader's default search finds it; pid1 also sets
			// LD_LIBRARY_PATH to this directory.
			a.file(filepath.Join("lib", triplet, l), real, 0o755)
			queue = append(queue, real)
		}
	}
	return nil
}

// ---- guest.lock ----

// lockFile pins packages ("ARCH PACKAGE VERSION SHA256") and outputs
// ("ARCH out:NAME - SHA256").
type lockFile struct {
	lines []lockLine
}

type lockLine struct{ arch, name, version, sha string }

func readLock(path string) (*lockFile, error) {
	l := &lockFile{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want ARCH NAME VERSION SHA256", path, i+1)
		}
		l.lines = append(l.lines, lockLine{f[0], f[1], f[2], f[3]})
	}
	return l, nil
}

func (l *lockFile) sha(key string) string {
	for _, e := range l.lines {
		if e.arch+" "+e.name == key {
			return e.sha
		}
	}
	return "(none)"
}

func (l *lockFile) set(key, version, sha string) {
	arch, name, _ := strings.Cut(key, " ")
	for i, e := range l.lines {
		if e.arch == arch && e.name == name {
			l.lines[i].version, l.lines[i].sha = version, sha
			return
		}
	}
	l.lines = append(l.lines, lockLine{arch, name, version, sha})
}

func (l *lockFile) packages(arch string) []lockLine {
	var out []lockLine
	for _, e := range l.lines {
		if e.arch == arch && !strings.HasPrefix(e.name, "out:") {
			out = append(out, e)
		}
	}
	return out
}

func (l *lockFile) entries(arch string) map[string]string {
	out := map[string]string{}
	for _, e := range l.packages(arch) {
		out[e.name] = e.version
	}
	return out
}

func (l *lockFile) write(path string) error {
	sort.SliceStable(l.lines, func(i, j int) bool {
		a, b := l.lines[i], l.lines[j]
		if a.arch != b.arch {
			return a.arch < b.arch
		}
		return strings.HasPrefix(b.name, "out:") && !strings.HasPrefix(a.name, "out:")
	})
	var b strings.Builder
	b.WriteString("# Inputs (Debian packages) and outputs of the guest image, checked by `make guest`.\n")
	b.WriteString("# ARCH NAME VERSION SHA256; rewrite with: go run ./build/guest -arch ARCH -update-lock\n")
	for _, e := range l.lines {
		fmt.Fprintf(&b, "%s %s %s %s\n", e.arch, e.name, e.version, e.sha)
	}
	return writeFile(path, []byte(b.String()))
}

// debName is where apt-get download saves a package.
func debName(name, version, arch string) string {
	return fmt.Sprintf("%s_%s_%s.deb", name, strings.ReplaceAll(version, ":", "%3a"), arch)
}

// fetch makes sure every pinned package of arch is in the cache with its
// pinned sha256.
func fetch(l *lockFile, arch, cache string) ([]string, error) {
	pkgs := l.packages(arch)
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("guest.lock pins no packages for %s (run with -update-lock)", arch)
	}
	var out []string
	for _, p := range pkgs {
		path := filepath.Join(cache, debName(p.name, p.version, arch))
		if fileSHA(path) != p.sha {
			if err := aptDownload(cache, fmt.Sprintf("%s:%s=%s", p.name, arch, p.version)); err != nil {
				return nil, err
			}
			if got := fileSHA(path); got != p.sha {
				return nil, fmt.Errorf("%s: sha256 %s, guest.lock pins %s", path, got, p.sha)
			}
		}
		out = append(out, path)
	}
	return out, nil
}

// resolve downloads the newest version of every wanted package and pins it.
func resolve(l *lockFile, arch, cache string) ([]string, error) {
	var out []string
	for _, name := range wanted(arch) {
		if strings.HasPrefix(name, "linux-image-cloud-") {
			dep, err := exec.Command("apt-cache", "depends", "--no-recommends", "--no-suggests", name+":"+arch).Output()
			if err != nil {
				return nil, fmt.Errorf("apt-cache depends %s: %w", name, err)
			}
			for _, line := range strings.Split(string(dep), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
					name = strings.TrimSuffix(v, ":"+arch)
					break
				}
			}
		}
		if err := aptDownload(cache, name+":"+arch); err != nil {
			return nil, err
		}
		m, _ := filepath.Glob(filepath.Join(cache, name+"_*_"+arch+".deb"))
		m2, _ := filepath.Glob(filepath.Join(cache, name+"_*_all.deb"))
		m = append(m, m2...)
		if len(m) == 0 {
			return nil, fmt.Errorf("apt-get download %s left no .deb in %s", name, cache)
		}
		sort.Slice(m, func(i, j int) bool { return modTime(m[i]) > modTime(m[j]) })
		v, err := exec.Command("dpkg-deb", "-f", m[0], "Version").Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg-deb -f %s: %w", m[0], err)
		}
		l.set(arch+" "+name, strings.TrimSpace(string(v)), fileSHA(m[0]))
		out = append(out, m[0])
	}
	// Drop pins of packages no longer wanted (an older kernel).
	keep := l.lines[:0]
	for _, e := range l.lines {
		if e.arch != arch || strings.HasPrefix(e.name, "out:") || contains(out, e.name) {
			keep = append(keep, e)
		}
	}
	l.lines = keep
	return out, nil
}

func contains(paths []string, name string) bool {
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), name+"_") {
			return true
		}
	}
	return false
}

func modTime(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.ModTime().UnixNano()
}

func aptDownload(dir, spec string) error {
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", "-q", spec)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Geteuid() == 0 {
		// A machine whose package lists are missing or stale: refresh once.
		if uout, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %v: %s", uerr, uout)
		}
		out, err = download()
	}
	if err != nil {
		return fmt.Errorf("apt-get download %s: %v: %s\n(for another arch: dpkg --add-architecture ARCH && apt-get update)", spec, err, out)
	}
	return nil
}

func fileSHA(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return sum(b)
}
