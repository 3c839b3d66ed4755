//go:build linux

package builder

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berth-dev/berth/runtime/buildkit/link"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// Services is what the engine does for its builder.
type Services interface {
	// Image lends a local image (an errdefs NotFound error when absent).
	Image(ref string) (link.SharedImage, error)
	// Import adds an image the builder exported and returns its ID.
	Import(ctx context.Context, req link.ImportRequest) (string, error)
	// JoinNetwork and LeaveNetwork lend a network namespace on the
	// default bridge to a RUN step.
	JoinNetwork(id, hostname string) (path string, err error)
	LeaveNetwork(id string)
	// HostGateway is what host-gateway resolves to ("" for none).
	HostGateway() string
}

// servePrivate listens on the engine's private socket for the builder (in
// a directory only root can enter).
func (b *Builder) servePrivate() error {
	os.Remove(b.engSock)
	l, err := net.Listen("unix", b.engSock)
	if err != nil {
		return err
	}
	if err := os.Chmod(b.engSock, 0o600); err != nil {
		l.Close()
		return err
	}
	b.private = &http.Server{Handler: b.privateMux(), ReadHeaderTimeout: 30 * time.Second}
	go b.private.Serve(l)
	return nil
}

func (b *Builder) privateMux() http.Handler {
	svc := b.cfg.Services
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+link.PathImage+"{ref...}", func(w http.ResponseWriter, r *http.Request) {
		si, err := svc.Image(r.PathValue("ref"))
		reply(w, si, err)
	})
	mux.HandleFunc("POST "+link.PathImport, func(w http.ResponseWriter, r *http.Request) {
		var req link.ImportRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, nil, errdefs.InvalidArgument("import: %v", err))
			return
		}
		id, err := svc.Import(r.Context(), req)
		reply(w, link.ImportResponse{ID: id}, err)
	})
	mux.HandleFunc("POST "+link.PathSandboxes+"{id}", func(w http.ResponseWriter, r *http.Request) {
		var req link.SandboxRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, nil, errdefs.InvalidArgument("sandbox: %v", err))
			return
		}
		path, err := svc.JoinNetwork(r.PathValue("id"), req.Hostname)
		reply(w, link.Sandbox{Path: path}, err)
	})
	mux.HandleFunc("DELETE "+link.PathSandboxes+"{id}", func(w http.ResponseWriter, r *http.Request) {
		svc.LeaveNetwork(r.PathValue("id"))
		reply(w, struct{}{}, nil)
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		e := link.Error{Message: err.Error()}
		if errdefs.IsNotFound(err) {
			code, e.NotFound = http.StatusNotFound, true
		} else if errors.Is(err, context.Canceled) {
			code = 499
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(e)
		return
	}
	json.NewEncoder(w).Encode(v)
}
