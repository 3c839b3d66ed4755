package hostagent

import "golang.org/x/sys/unix"

// totalMemory is the host's RAM in bytes (0 if unknown).
func totalMemory() uint64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return n
}
