package hostagent

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

var globalMemoryStatusEx = windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalMemoryStatusEx")

// memoryStatusEx is MEMORYSTATUSEX.
type memoryStatusEx struct {
	length, memoryLoad                       uint32
	totalPhys, availPhys                     uint64
	totalPageFile, availPageFile             uint64
	totalVirtual, availVirtual, availExtVirt uint64
}

// totalMemory is the host's RAM in bytes (0 if unknown).
func totalMemory() uint64 {
	var m memoryStatusEx
	m.length = uint32(unsafe.Sizeof(m))
	if r, _, _ := globalMemoryStatusEx.Call(uintptr(unsafe.Pointer(&m))); r == 0 {
		return 0
	}
	return m.totalPhys
}
