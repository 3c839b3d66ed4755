//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/containerd/containerd/v2/defaults"
	controlapi "github.com/moby/buildkit/api/services/control"
	gatewayapi "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/util/grpcerrors"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto" // BuildKit's protobuf codec, as buildkitd registers it
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/runtime/buildkit"
	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// serve answers the engine's forwarded connections on l until ctx ends:
// POST /grpc (BuildKit's control API over h2c), POST /session (the
// client's session: context files, secrets, SSH, auth) and the admin
// requests the engine makes itself (disk usage, prune).
func serve(ctx context.Context, l net.Listener, b *buildkit.Builder, root string, log *slog.Logger) error {
	up, err := uploadsDir(root)
	if err != nil {
		return err
	}
	bs := &builds{b: b, uploads: up, log: log, cancels: map[string]func(){}}
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(recoverUnary(log), logErrors(log), collectAfterSolve(b, log), proxyArgs(b), grpcerrors.UnaryServerInterceptor),
		grpc.ChainStreamInterceptor(recoverStream(log), grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
	)
	b.Register(gs)
	h2 := &http2.Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /grpc", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrade(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h2.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: gs})
	})
	mux.HandleFunc("POST /session", func(w http.ResponseWriter, r *http.Request) {
		if err := b.Sessions().HandleHTTPRequest(ctx, w, r); err != nil {
			log.Debug("session", "err", err)
		}
	})
	mux.HandleFunc("GET "+link.PathDiskUsage, func(w http.ResponseWriter, r *http.Request) {
		du, err := b.DiskUsage(r.Context())
		reply(w, du, err)
	})
	mux.HandleFunc("POST "+link.PathPrune, func(w http.ResponseWriter, r *http.Request) {
		var req link.PruneRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			reply(w, nil, err)
			return
		}
		rep, err := b.Prune(r.Context(), req)
		reply(w, rep, err)
	})
	mux.HandleFunc("POST /build", bs.serveBuild)
	mux.HandleFunc("POST /build/cancel", bs.cancel)
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		gs.Stop()
	}()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// upgrade answers an h2c upgrade with 101 and returns the raw connection,
// as dockerd's /grpc does: the client speaks HTTP/2 from there on.
func upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	if r.Header.Get("Upgrade") != "h2c" {
		return nil, errors.New("expected Upgrade: h2c")
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errors.New("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "h2c")
	if err := resp.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	if rw.Reader.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: rw.Reader}, nil
	}
	return conn, nil
}

// bufferedConn reads what the HTTP server had buffered before the raw
// connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(link.Error{Message: err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// recoverUnary and recoverStream turn a panic in one request into that
// request's error: one bad build must not end every other build.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer recoverTo(log, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer recoverTo(log, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

func recoverTo(log *slog.Logger, method string, err *error) {
	if p := recover(); p != nil {
		log.Error("panic in the control API", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error in the builder: %v", p)
	}
}

// collectAfterSolve applies the cache bound once each build ends.
func collectAfterSolve(b *buildkit.Builder, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if info.FullMethod == controlapi.Control_Solve_FullMethodName {
			// After the answer: a collection must not delay the build.
			go func() {
				if cerr := b.Collect(context.WithoutCancel(ctx)); cerr != nil {
					log.Warn("build cache collection", "err", cerr)
				}
			}()
		}
		return resp, err
	}
}

// proxyArgs gives the solves of clients that reach the control API
// (buildx) the engine's proxy as the predefined build args, where the
// client did not set them.
func proxyArgs(b *buildkit.Builder) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		switch sr := req.(type) {
		case *controlapi.SolveRequest:
			if sr.Frontend != "" {
				sr.FrontendAttrs = b.AddProxyArgs(sr.FrontendAttrs)
			}
		case *gatewayapi.SolveRequest:
			// buildx runs the Dockerfile frontend through the gateway
			// (its client-side build): the frontend's options are here.
			if sr.Frontend != "" {
				sr.FrontendOpt = b.AddProxyArgs(sr.FrontendOpt)
			}
		}
		return handler(ctx, req)
	}
}

// logErrors logs failed control API calls (the client shows them too).
func logErrors(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		t0 := time.Now()
		resp, err := handler(ctx, req)
		log.Debug("control API call", "method", info.FullMethod, "took", time.Since(t0))
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Debug("control API", "method", info.FullMethod, "err", err)
		}
		return resp, err
	}
}
