//go:build linux

package engineapi

// execRoutes registers /exec/* and /containers/{id}/exec.
func (s *Server) execRoutes(rt *router) {}
