//go:build linux

package engineapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"path"

	"github.com/moby/moby/api/types/build"

	"github.com/berth-dev/berth/runtime/buildkit/link"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// buildkitRoutes registers the two connections buildx's docker driver
// dials, as dockerd serves them: POST /grpc (BuildKit's control API over
// h2c) and POST /session (the client's files, secrets, SSH and
// credentials, served back to the builder over the same connection).
func (s *Server) buildkitRoutes(rt *router) {
	rt.handle(http.MethodPost, "/grpc", s.buildkitConn)
	rt.handle(http.MethodPost, "/session", s.buildkitConn)
}

// buildkitConn hands the connection to the builder process as it is: the
// request (path without the API version) and then the bytes both ways, so
// the builder answers the upgrade and speaks HTTP/2 with the client.
func (s *Server) buildkitConn(w http.ResponseWriter, r *http.Request) error {
	if s.bk == nil {
		return errdefs.NotImplemented("BuildKit is not available in this engine")
	}
	if r.Header.Get("Upgrade") == "" {
		return errdefs.InvalidArgument("%s needs a connection upgrade (h2c)", r.URL.Path)
	}
	backend, err := s.bk.Dial(r.Context())
	if err != nil {
		return err
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		backend.Close()
		return errors.New("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		backend.Close()
		return err
	}
	r.URL.Path = "/" + path.Base(r.URL.Path) // without the /vX.Y prefix
	r.RequestURI = ""
	if err := r.Write(backend); err != nil {
		conn.Close()
		backend.Close()
		return nil
	}
	go splice(conn, rw.Reader, backend)
	return nil
}

// splice copies both ways until either side closes, then closes both.
func splice(client net.Conn, buffered io.Reader, backend net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(backend, io.MultiReader(buffered, client))
		if cw, ok := backend.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, backend)
		if cw, ok := client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
	client.Close()
	backend.Close()
}

// buildkitForward hands POST /build?version=2 (and /build/cancel for such
// builds) to the builder, which answers it as dockerd's builder-next does;
// the response streams back as the builder writes it.
func (s *Server) buildkitForward(w http.ResponseWriter, r *http.Request, path string) error {
	if s.bk == nil || s.bk.Available() != nil {
		return errdefs.NotImplemented("BuildKit is not available in this engine: build with version=1")
	}
	if _, err := s.bk.Dial(r.Context()); err != nil { // starts it
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.URL.Path = "http", "buildkitd", path
		},
		Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return s.bk.Dial(ctx) }},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, fmt.Errorf("BuildKit builder: %w", err))
		},
	}
	rp.ServeHTTP(w, r)
	return nil
}

// builderVersion is what /_ping advertises: "2" (BuildKit) when the
// builder binary is there, so the docker CLI and buildx build with it.
func (s *Server) builderVersion() string {
	if s.bk != nil && s.bk.Available() == nil {
		return string(build.BuilderBuildKit)
	}
	return string(build.BuilderV1)
}

// buildkitDiskUsage is the BuildKit cache as /system/df lists it.
func (s *Server) buildkitDiskUsage(ctx context.Context) ([]build.CacheRecord, error) {
	if s.bk == nil {
		return nil, nil
	}
	du, err := s.bk.DiskUsage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]build.CacheRecord, 0, len(du.Records))
	for _, r := range du.Records {
		out = append(out, build.CacheRecord{ID: r.ID, Parents: r.Parents, Type: r.Type, Description: r.Description,
			InUse: r.InUse, Shared: r.Shared, Size: r.Size, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt,
			UsageCount: r.UsageCount})
	}
	return out, nil
}

// buildkitPrune prunes the BuildKit cache for POST /build/prune.
func (s *Server) buildkitPrune(ctx context.Context, req link.PruneRequest) (build.CachePruneReport, error) {
	if s.bk == nil {
		return build.CachePruneReport{}, nil
	}
	rep, err := s.bk.Prune(ctx, req)
	return build.CachePruneReport{CachesDeleted: rep.CachesDeleted, SpaceReclaimed: rep.SpaceReclaimed}, err
}
