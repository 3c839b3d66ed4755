//go:build linux

package engineapi

import "github.com/moby/moby/api/types/system"

// fillInfo adds the counts the runtime knows (containers, images) to /info.
func (s *Server) fillInfo(info *system.Info) {
	info.Images = len(s.eng.Images.List())
	if m := s.eng.Containers; m != nil {
		info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = m.Counts()
		info.Containers = info.ContainersRunning + info.ContainersPaused + info.ContainersStopped
	}
}
