//go:build linux

package engineapi

import (
	"os"
	"runtime"

	"github.com/moby/moby/api/types/system"
)

// fillInfo adds the counts the runtime knows (containers, images) to /info.
func (s *Server) fillInfo(info *system.Info) {
	info.Images = len(s.eng.Images.List())
	if m := s.eng.Containers; m != nil {
		info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = m.Counts()
		info.Containers = info.ContainersRunning + info.ContainersPaused + info.ContainersStopped
	}
	// The agent's own descriptors and goroutines, as dockerd reports them
	// (leak tests watch these).
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds) - 1 // less the one reading the directory
	}
	info.NGoroutines = runtime.NumGoroutine()
	s.fillRegistryInfo(info)
}
