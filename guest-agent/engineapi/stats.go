//go:build linux

package engineapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// statsRoutes registers docker stats' endpoint. Owned by the network/volume work.
func (s *Server) statsRoutes(rt *router) {
	rt.handle(http.MethodGet, "/containers/{id}/stats", s.containerStats)
}

// statsInterval is how often a stream samples, as dockerd's collector.
const statsInterval = time.Second

// containerStats streams a sample a second (stream=true, the default), or
// answers once: with one-shot at once, otherwise after two samples so the
// answer carries precpu_stats and the CLI can compute CPU %.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	id := pathVar(r, "id")
	stream := boolValueOr(r, "stream", true)
	first, err := s.eng.Containers.Stats(id)
	if err != nil {
		return err
	}
	if !stream && boolValue(r, "one-shot") {
		return writeJSON(w, http.StatusOK, first)
	}
	prev := first
	wait := func() bool {
		t := time.NewTimer(statsInterval)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if !stream {
		if first.Read.IsZero() || !wait() {
			return writeJSON(w, http.StatusOK, first)
		}
		cur, err := s.eng.Containers.Stats(id)
		if err != nil {
			return err
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		return writeJSON(w, http.StatusOK, cur)
	}
	out := streamWriter(w, "application/json")
	enc := json.NewEncoder(out)
	if err := enc.Encode(first); err != nil {
		return nil
	}
	for wait() {
		cur, err := s.eng.Containers.Stats(id)
		if err != nil {
			return nil // removed: the stream ends
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(cur); err != nil {
			return nil
		}
		prev = cur
	}
	return nil
}
