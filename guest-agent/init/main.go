//go:build linux

// berth-init is PID 1 of Berth's VM, the initramfs' /init (see package
// guest-agent/pid1): it prepares the machine, mounts the system disk and
// runs the engine, berth-agent, from there. It is also the kernel's
// modprobe (/sbin/modprobe links to it). It carries no engine, so it
// starts at once even under emulation: the kernel runs it at every boot
// and for every module it asks for.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/guest-agent/pid1"
)

// version is set by the build (-ldflags -X main.version=…).
var version = "dev"

func main() {
	if filepath.Base(os.Args[0]) == "modprobe" {
		os.Exit(pid1.Modprobe(os.Args[1:]))
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "berth-init is PID 1 of Berth's VM (and its modprobe); it does not run otherwise")
		os.Exit(2)
	}
	pid1.Main(version)
}
