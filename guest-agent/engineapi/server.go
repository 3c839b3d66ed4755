//go:build linux

// Package engineapi serves the Docker Engine API over HTTP on top of the
// runtime (runtime/engine). It owns everything HTTP: routing, version
// negotiation, request decoding, stream framing, hijacked connections, and
// the one mapping from runtime error kinds to HTTP status codes.
package engineapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/berth-dev/berth/guest-agent/builder"
	"github.com/berth-dev/berth/internal/connauth"
	"github.com/berth-dev/berth/runtime/engine"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// API versions: we answer as a current dockerd does, accepting clients
// from MinAPIVersion up and negotiating down to theirs.
const (
	APIVersion    = "1.52"
	MinAPIVersion = "1.24"
)

// Version, GitCommit and BuildTime are reported by /version; set at link
// time.
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
	BuildTime = "unknown"
)

// Server is an http.Handler for the Engine API.
type Server struct {
	eng *engine.Engine
	bk  *builder.Builder // nil: no BuildKit (the classic builder only)
	log *slog.Logger
	rt  router
}

// New builds the API server for eng; bk, when not nil, is the BuildKit
// builder that POST /grpc and /session reach.
func New(eng *engine.Engine, bk *builder.Builder, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{eng: eng, bk: bk, log: log}
	s.systemRoutes(&s.rt)
	s.imageRoutes(&s.rt)
	s.containerRoutes(&s.rt)
	s.execRoutes(&s.rt)
	s.buildRoutes(&s.rt)
	s.buildkitRoutes(&s.rt)
	s.networkRoutes(&s.rt)
	s.volumeRoutes(&s.rt)
	s.archiveRoutes(&s.rt)
	s.statsRoutes(&s.rt)
	s.diskRoutes(&s.rt)
	s.toolRoutes(&s.rt)
	s.unsupportedRoutes(&s.rt)
	return s
}

// Serve answers Engine API requests on l until it is closed or ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var h http.Handler = s
	if l.Addr().Network() == "tcp" && !connauth.Authenticated(l) {
		// Connections that presented the host agent's token come from
		// the user's own socket; others may come from a web page.
		h = tcpGuard(l, s)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(shutdownCtx)
	}()
	err := hs.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

type apiVersionKey struct{}

// apiVersion returns the API version the client asked for (the /vX.Y path
// prefix), or the server's own when it sent none.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(apiVersionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path, version := r.URL.Path, APIVersion
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		version, path = m[1], m[2]
		if versionLess(version, MinAPIVersion) {
			writeError(w, r, errdefs.InvalidArgument("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinAPIVersion))
			return
		}
		if versionLess(APIVersion, version) {
			writeError(w, r, errdefs.InvalidArgument("client version %s is too new. Maximum supported API version is %s", version, APIVersion))
			return
		}
	}
	// An unknown path, a path with a trailing slash and a known path with
	// another method are all 404, as dockerd's router answers them.
	h, vars, _ := s.rt.lookup(r.Method, path)
	if h == nil {
		writeError(w, r, errdefs.NotFound("page not found"))
		return
	}
	w.Header().Set("Server", "Berth/"+Version+" (linux)")
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Ostype", "linux")
	ctx := context.WithValue(withVars(r.Context(), vars), apiVersionKey{}, version)
	r = r.WithContext(ctx)
	if err := h(w, r); err != nil {
		writeError(w, r, err)
		s.log.Debug("api", "method", r.Method, "path", r.URL.Path, "err", err, "took", time.Since(start))
		return
	}
	s.log.Debug("api", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
}

// versionLess compares "major.minor" API versions numerically.
func versionLess(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	return am < bm || (am == bm && an < bn)
}

func splitVersion(v string) (major, minor int) {
	maj, min, _ := strings.Cut(v, ".")
	for _, c := range maj {
		major = major*10 + int(c-'0')
	}
	for _, c := range min {
		if c < '0' || c > '9' {
			break
		}
		minor = minor*10 + int(c-'0')
	}
	return
}
