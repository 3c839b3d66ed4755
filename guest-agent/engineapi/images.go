//go:build linux

package engineapi

// imageRoutes registers /images/*. Owned by the image work.
func (s *Server) imageRoutes(rt *router) {}
