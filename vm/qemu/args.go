package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/vm/driver"
)

// The guest's disks: the data disk and the read-only system disk, NVMe
// namespaces 1 and 2 of the one controller.
const (
	dataDev   = "/dev/nvme0n1"
	systemDev = "/dev/nvme0n2"
)

// lanes is how many virtio-serial ports carry bulk data from the guest
// besides the multiplexed channel (transport's lanes): as many published
// port downloads at once go at full speed.
const lanes = 4

// lanePath is lane i's chardev socket.
func lanePath(stateDir string, i int) string {
	return filepath.Join(stateDir, fmt.Sprintf("lane%d.sock", i))
}

// Files in the machine's state dir.
const (
	qmpSock    = "qmp.sock"
	agentSock  = "agent.sock"
	qemuLog    = "qemu.log"
	portName   = "berth.agent"
	qbootImage = "/usr/share/qemu/qboot.rom"
)

// kernelArgs are fixed boot parameters: console, no delays for hardware
// the machine does not have, and a panic that ends QEMU (with -no-reboot)
// so the host sees a dead VM instead of a hung one. Under emulation every
// initcall costs: the crypto self-tests, the KDF self-test (it also waits
// for the initramfs to unpack, to run modprobe), kprobe tracing and the
// module signing certificates (modules here carry no signatures) are
// skipped.
func kernelArgs(arch string) []string {
	args := []string{"quiet", "panic=-1", "cryptomgr.notests",
		"initcall_blacklist=crypto_kdf108_init,init_kprobe_trace,load_system_certificate_list"}
	switch arch {
	case "amd64":
		args = append(args, "console=ttyS0", "tsc=reliable", "no_timer_check",
			"i8042.nokbd", "i8042.noaux", "i8042.nopnp", "pci=lastbus=0", "8250.nr_uarts=1")
	case "arm64":
		args = append(args, "console=ttyAMA0")
	}
	return args
}

type qemuConfig struct {
	arch     string
	accel    string
	stateDir string
	vsockCID uint32 // 0: no vsock device
	logLevel string
	extra    []string // more kernel parameters
	probe    bool
	// fsSockets are the virtiofsd sockets, one per m.Shares entry.
	fsSockets []string
	// floor replaces the initramfs with this one and the console with
	// QEMU's stdout (Floor).
	floor string
}

// buildArgs returns QEMU's command line for m.
func buildArgs(m *driver.Machine, c qemuConfig) ([]string, error) {
	params, err := driver.GuestParams(m, c.logLevel)
	if err != nil {
		return nil, err
	}
	cmdline := append(kernelArgs(c.arch), params...)
	cmdline = append(cmdline, "berth.disk="+dataDev, "berth.sys="+systemDev)
	cmdline = append(cmdline, c.extra...)
	if c.probe {
		cmdline = append(cmdline, "berth.probe=1")
	}

	accel := c.accel
	if accel == "tcg" {
		accel += ",tb-size=" + tcgCacheMiB
	}
	if accel == "whpx" {
		// WHPX's in-kernel irqchip loses MSI interrupts on many hosts
		// ("whpx: injection failed"); QEMU's own is reliable.
		accel += ",kernel-irqchip=off"
	}
	args := []string{"-name", "berth-" + m.Name, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", accel}
	switch c.arch {
	case "amd64":
		args = append(args, "-M", "q35")
		if _, err := os.Stat(qbootImage); err == nil {
			args = append(args, "-bios", qbootImage) // minimal firmware: ~0.2 s less than SeaBIOS
		}
	case "arm64":
		args = append(args, "-M", "virt")
	default:
		return nil, fmt.Errorf("no QEMU machine for %s", c.arch)
	}
	if c.accel == "tcg" {
		args = append(args, "-cpu", tcgCPU(c.arch))
	} else {
		args = append(args, "-cpu", "host")
	}
	initrd, console := m.Initrd, []string{
		"-chardev", "file,id=console,path=" + filepath.Join(c.stateDir, driver.ConsoleLog) + ",append=on",
		"-serial", "chardev:console"}
	if c.floor != "" {
		initrd, console = c.floor, []string{"-serial", "stdio"}
	}
	args = append(args,
		"-m", fmt.Sprintf("%d", m.MemoryMiB),
		"-smp", fmt.Sprintf("%d", m.CPUs),
		"-kernel", m.Kernel, "-initrd", initrd,
		"-append", strings.Join(cmdline, " "),
		"-device", "virtio-rng-pci",
	)
	if c.probe {
		return append(args, "-serial", "stdio"), nil
	}
	args = append(args, console...)
	args = append(args,
		// The disks are NVMe namespaces: the guest kernel has NVMe built in,
		// so neither waits for a module (virtio-blk is one).
		"-drive", "file="+filepath.Join(c.stateDir, driver.DataDisk)+",if=none,id=data,format=raw,discard=unmap,detect-zeroes=unmap,aio=threads",
		"-drive", "file="+m.System+",if=none,id=system,format=raw,readonly=on,aio=threads",
		"-device", "nvme,id=nvme0,serial=berth",
		"-device", "nvme-ns,bus=nvme0,drive=data,nsid=1",
		"-device", "nvme-ns,bus=nvme0,drive=system,nsid=2",
		"-netdev", "user,id=net0",
		"-device", "virtio-net-pci,netdev=net0",
		"-chardev", "socket,id=agent,path="+filepath.Join(c.stateDir, agentSock)+",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-device", "virtserialport,chardev=agent,name="+portName,
	)
	for i := 0; i < lanes; i++ {
		args = append(args,
			"-chardev", fmt.Sprintf("socket,id=lane%d,path=%s,server=on,wait=off", i, lanePath(c.stateDir, i)),
			"-device", fmt.Sprintf("virtserialport,chardev=lane%d,name=berth.lane%d", i, i))
	}
	args = append(args,
		// The guest reports the memory it frees (virtio_balloon's free page
		// reporting) and QEMU gives it back to the host: an idle machine's
		// RSS falls to what it uses.
		"-device", "virtio-balloon-pci,free-page-reporting=on",
		"-qmp", "unix:"+filepath.Join(c.stateDir, qmpSock)+",server=on,wait=off",
	)
	if len(c.fsSockets) > 0 {
		// vhost-user devices need the guest's memory shared with virtiofsd.
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", m.MemoryMiB),
			"-numa", "node,memdev=mem")
		for i, sock := range c.fsSockets {
			args = append(args,
				"-chardev", fmt.Sprintf("socket,id=fs%d,path=%s", i, sock),
				"-device", fmt.Sprintf("vhost-user-fs-pci,queue-size=1024,chardev=fs%d,tag=%s", i, m.Shares[i].Tag))
		}
	}
	if c.vsockCID != 0 {
		args = append(args, "-device", fmt.Sprintf("vhost-vsock-pci,guest-cid=%d", c.vsockCID))
	}
	return args, nil
}

// tcgCPU is the CPU emulated without an accelerator: every feature QEMU
// can emulate (images built for newer x86-64 levels run), but on x86 not
// ERMS. With it the guest kernel clears and copies pages with `rep
// stosb`/`rep movsb`, which TCG runs a byte per iteration; without it, 8
// bytes (`rep stosq`). Page faults are much of a container start, so this
// measured ≈ 10% less QEMU CPU per `docker run` (docs/benchmarks.md).
// An Intel CPU model would be worse still: the kernel would turn on page
// table isolation, a TLB flush per system call under TCG.
func tcgCPU(arch string) string {
	if arch == "amd64" {
		return "max,-erms"
	}
	return "max"
}

// tcgCacheMiB bounds the translation cache: by default QEMU sizes it to an
// eighth of the host's memory (up to 1 GiB) and it only grows, every binary
// a container runs adding its translations, so a long-running machine's
// RSS would keep what its busiest hours needed. A boot and ten container
// runs use less than 128 MiB of it (QEMU's RSS is the same with 128, 256
// or the default); 64 MiB thrashed (docker run 450 → 650-830 ms).
const tcgCacheMiB = "256"

// binary is QEMU's system emulator for arch.
func binary(arch string) string {
	name := map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[arch]
	if runtime.GOOS == "windows" {
		name += ".exe"
		// The QEMU installer for Windows does not put itself on PATH.
		if _, err := exec.LookPath(name); err != nil {
			if p := filepath.Join(os.Getenv("ProgramFiles"), "qemu", name); fileExists(p) {
				return p
			}
		}
	}
	return name
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
