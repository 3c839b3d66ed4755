//go:build linux

package container

import (
	"os"

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
