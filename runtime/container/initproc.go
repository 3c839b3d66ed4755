//go:build linux

package container

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitPath is where `--init` mounts the init in the container, as dockerd
// mounts docker-init. The init is the engine's own binary (a static one),
// which runs as guest-agent/dockerinit when started under this name.
const InitPath = "/sbin/docker-init"

// withInit runs the container's command under the init: the agent binary
// bind-mounted read-only at InitPath becomes PID 1 and the command its
// child.
func withInit(spec *specs.Spec) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--init: find the engine's binary: %w", err)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: exe,
		Options: []string{"rbind", "ro", "nosuid", "nodev", "rprivate"}})
	spec.Process.Args = append([]string{InitPath, "--"}, spec.Process.Args...)
	return nil
}
