//go:build linux

package engineapi

import (
	"context"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/common"
	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/container"
)

// execRoutes registers /exec/* and /containers/{id}/exec.
func (s *Server) execRoutes(rt *router) {
	rt.handle(http.MethodPost, "/containers/{id}/exec", s.execCreate)
	rt.handle(http.MethodPost, "/exec/{id}/start", s.execStart)
	rt.handle(http.MethodPost, "/exec/{id}/resize", s.resize((*container.Manager).ExecResize))
	rt.handle(http.MethodGet, "/exec/{id}/json", s.execInspect)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	var req ctr.ExecCreateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id, err := m.ExecCreate(pathVar(r, "id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, common.IDResponse{ID: id})
}

// execStart answers errors found before the process starts with a status;
// after that the connection is hijacked and a failure to start the process
// is written into the stream, as dockerd does (the CLI then reads the exit
// code, 126 or 127, from exec inspect).
func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	var req ctr.ExecStartRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id := pathVar(r, "id")
	if _, err := m.ExecCheck(id); err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	if req.Detach {
		if err := m.ExecStart(ctx, id, container.ExecStartOptions{Detach: true, ConsoleSize: req.ConsoleSize}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// The stream is framed by the start request's Tty, not the exec's, as
	// dockerd frames it: a client that starts without Tty reads frames
	// even from a process on a terminal.
	conn, buffered, err := hijack(w, r, !req.Tty)
	if err != nil {
		return err
	}
	defer closeHijacked(conn)
	stdout, stderr := outputWriters(conn, req.Tty)
	if req.Tty {
		stderr = nil // a raw stream carries stdout only, as dockerd's
	}
	err = m.ExecStart(ctx, id, container.ExecStartOptions{
		ConsoleSize: req.ConsoleSize, Stdin: io.MultiReader(buffered, conn), Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		stdout.Write([]byte(err.Error() + "\r\n"))
	}
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	resp, err := m.ExecInspect(pathVar(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}
