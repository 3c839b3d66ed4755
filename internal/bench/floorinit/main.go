//go:build linux

// floorinit is the /init of the VM benchmark's floor boot (internal/bench,
// vm/qemu Floor): the same kernel and QEMU flags as Berth's machine with a
// trivial static /init, which prints the time since the kernel started and
// powers off at once.
package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	// qemu.FloorMarker; not imported, to keep this program trivial.
	os.Stdout.WriteString("BERTH-FLOOR " + strconv.FormatInt(ts.Nano(), 10) + "\n")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
