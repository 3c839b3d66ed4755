//go:build linux

package engineapi

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// archiveRoutes registers docker cp's endpoints. Owned by the network/volume work.
func (s *Server) archiveRoutes(rt *router) {
	rt.handle(http.MethodGet, "/containers/{id}/archive", s.containerArchive) // HEAD too
	rt.handle(http.MethodPut, "/containers/{id}/archive", s.containerExtract)
}

// setPathStat sets the header docker cp reads the path's stat from.
func setPathStat(w http.ResponseWriter, st ctr.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) containerArchive(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	if p == "" {
		return errdefs.InvalidArgument("path is required")
	}
	if r.Method == http.MethodHead {
		st, err := s.eng.Containers.StatPath(pathVar(r, "id"), p)
		if err != nil {
			return err
		}
		if err := setPathStat(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	started := false
	err := s.eng.Containers.ArchivePath(pathVar(r, "id"), p, func(st ctr.PathStat) (io.Writer, error) {
		if err := setPathStat(w, st); err != nil {
			return nil, err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
		return w, nil
	})
	if err != nil && started {
		s.log.Warn("archive cut short", "container", pathVar(r, "id"), "path", p, "err", err)
		return nil // the status is sent: the client sees a truncated tar
	}
	return err
}

func (s *Server) containerExtract(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	if p == "" {
		return errdefs.InvalidArgument("path is required")
	}
	if err := s.eng.Containers.ExtractToPath(pathVar(r, "id"), p, r.Body, boolValue(r, "copyUIDGID")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
