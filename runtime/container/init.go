//go:build linux

package container

import (
	"os"
	"runtime"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins namespaces before the Go runtime starts
	// in the re-executed `init` process.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// IsInit reports whether this process was re-executed by libcontainer as a
// container's init (`berth-agent init`).
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == "init" }

// Init runs libcontainer's container-side setup and execs the user process.
// It does not return on success.
func Init() { libcontainer.Init() }

func init() {
	// libcontainer joins a container's mount namespace on a goroutine that
	// locks its thread and exits without unlocking, so the thread dies with
	// it. Go cannot end the main thread: had that goroutine run there, the
	// whole process would stay in the dead container's mount namespace
	// (/proc/self shows it) and pin its mounts. Locking the main goroutine
	// to the main thread, from init, keeps every other goroutine off it.
	runtime.LockOSThread()
}
