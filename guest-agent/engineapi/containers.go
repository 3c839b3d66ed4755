//go:build linux

package engineapi

// containerRoutes registers /containers/*. Owned by the container work.
func (s *Server) containerRoutes(rt *router) {}
