//go:build linux

package engineapi

import (
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// networkRoutes registers /networks/*. Owned by the network work.
func (s *Server) networkRoutes(rt *router) {
	rt.handle(http.MethodGet, "/networks", s.networkList)
	rt.handle(http.MethodPost, "/networks/create", s.networkCreate)
	rt.handle(http.MethodPost, "/networks/prune", s.networkPrune)
	rt.handle(http.MethodGet, "/networks/{id}", s.networkInspect)
	rt.handle(http.MethodDelete, "/networks/{id}", s.networkRemove)
	rt.handle(http.MethodPost, "/networks/{id}/connect", s.networkConnect)
	rt.handle(http.MethodPost, "/networks/{id}/disconnect", s.networkDisconnect)
}

func (s *Server) networksInUse() func(string) bool {
	used := s.eng.Containers.NetworksInUse()
	return func(name string) bool { return used[name] }
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	list, err := s.eng.Networks.List(f, s.networksInUse())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	n, err := s.eng.Networks.Inspect(pathVar(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	resp, err := s.eng.Networks.Create(req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.eng.Networks.Remove(pathVar(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	rep, err := s.eng.Networks.Prune(f, s.networksInUse())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.InvalidArgument("no container given")
	}
	if err := s.eng.Containers.ConnectNetwork(r.Context(), req.Container, pathVar(r, "id"), req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return errdefs.InvalidArgument("no container given")
	}
	if err := s.eng.Containers.DisconnectNetwork(r.Context(), req.Container, pathVar(r, "id"), req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
