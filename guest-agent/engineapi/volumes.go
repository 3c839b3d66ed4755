//go:build linux

package engineapi

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/runtime/filters"
)

// volumeRoutes registers /volumes/*. Owned by the network/volume work.
func (s *Server) volumeRoutes(rt *router) {
	rt.handle(http.MethodGet, "/volumes", s.volumeList)
	rt.handle(http.MethodPost, "/volumes/create", s.volumeCreate)
	rt.handle(http.MethodPost, "/volumes/prune", s.volumePrune)
	rt.handle(http.MethodGet, "/volumes/{name}", s.volumeInspect)
	rt.handle(http.MethodDelete, "/volumes/{name}", s.volumeRemove)
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	list, err := s.eng.Volumes.List(f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: list, Warnings: []string{}})
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volume.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	v, err := s.eng.Volumes.Create(req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.eng.Volumes.Get(pathVar(r, "name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.eng.Volumes.Remove(pathVar(r, "name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if apiBefore(r, "1.42") && !f.Has("all") {
		f.Add("all", "true") // named volumes too, as prune did before 1.42
	}
	rep, err := s.eng.Volumes.Prune(f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
