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
	"strings"
	"sync"
	"time"

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
		if path.Base(r.URL.Path) == "grpc" {
			// Answer the control API with the reason: buildx, told "no
			// BuildKit here", would go and boot a builder container from
			// Docker Hub instead, and fail on that.
			return grpcUnavailable(w, r, err)
		}
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

// grpcUnavailable takes the /grpc upgrade and answers every call on it
// with gRPC's UNAVAILABLE and err's message (a trailers-only response), so
// the client reports why the builder is not there. The engine links no
// gRPC: Go's HTTP server speaks the HTTP/2 it needs.
func grpcUnavailable(w http.ResponseWriter, r *http.Request, cause error) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return cause
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return cause
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		conn.Close()
		return nil
	}
	msg := cause.Error()
	if !strings.Contains(msg, "BuildKit") {
		msg = "BuildKit builder: " + msg
	}
	msg = grpcMessage(msg)
	hs := &http.Server{
		Protocols: new(http.Protocols),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			h := w.Header()
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", "14") // UNAVAILABLE
			h.Set("Grpc-Message", msg)
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	hs.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		hs.Serve(&oneConnListener{conn: &bufConn{Conn: conn, r: io.MultiReader(rw.Reader, conn)}})
	}()
	return nil
}

// grpcMessage percent-encodes a grpc-message header value as gRPC asks.
func grpcMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// oneConnListener hands out one connection, then waits until closed.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	var c net.Conn
	l.once.Do(func() { c = &closeNotify{Conn: l.conn, onClose: l.Close} })
	if c != nil {
		return c, nil
	}
	<-done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// closeNotify ends its listener when the connection closes.
type closeNotify struct {
	net.Conn
	onClose func() error
}

func (c *closeNotify) Close() error {
	c.onClose()
	return c.Conn.Close()
}

// bufConn reads buffered bytes before the connection's own.
type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

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
