//go:build linux

package buildkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/docker/cli/cli/config/types"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/solver/pb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// BuildRequest is a build the engine's POST /build?version=2 asks for, as
// dockerd's builder-next takes it: the context is a tar archive uploaded
// with the request (ContextFile) or a remote URL (git or http), the
// Dockerfile frontend's attributes say the rest.
type BuildRequest struct {
	Ref           string // unique: the build's ID for status and cancel
	ContextFile   string
	RemoteContext string
	// Dockerfile, when set, is the Dockerfile's content, sent apart from
	// the context (the docker CLI adds a Dockerfile from outside the
	// context to the archive under a random name, which the image must not
	// get); FrontendAttrs["filename"] names it.
	Dockerfile    []byte
	FrontendAttrs map[string]string
	Tags          []string
	// Auth are credentials by registry (X-Registry-Config: keyed
	// "host:port", or "https://index.docker.io/v1/" for Docker Hub), for
	// pulls of base images.
	Auth map[string]types.AuthConfig
}

// Build solves req with the Dockerfile frontend and the moby exporter,
// passing every status update (a marshalled StatusResponse, what dockerd
// sends as "moby.buildkit.trace") to status. It returns the image ID.
func (b *Builder) Build(ctx context.Context, req BuildRequest, status func([]byte) error) (string, error) {
	attrs := map[string]string{}
	for k, v := range req.FrontendAttrs {
		attrs[k] = v
	}
	addProxyArgs(attrs, b.proxyArgs)
	var inputs map[string]*pb.Definition
	switch {
	case req.RemoteContext != "":
		attrs["context"] = req.RemoteContext
	case req.ContextFile != "":
		url := b.uploads.add(req.Ref, req.ContextFile)
		defer b.uploads.remove(req.Ref)
		var err error
		if inputs, err = uploadInputs(ctx, url, attrs["filename"], req.Dockerfile); err != nil {
			return "", err
		}
	default:
		return "", errors.New("build: no context")
	}
	solve := &controlapi.SolveRequest{
		Ref:            req.Ref,
		Frontend:       "dockerfile.v0",
		FrontendAttrs:  attrs,
		FrontendInputs: inputs,
		Exporters: []*controlapi.Exporter{{Type: exporterMoby,
			Attrs: map[string]string{string(exptypes.OptKeyName): strings.Join(req.Tags, ",")}}},
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if len(req.Auth) > 0 {
		// BuildKit asks the client's session for credentials: this build's
		// client is the engine, so the session is made here, in-process.
		sess, err := b.localSession(ctx, req.Auth)
		if err != nil {
			return "", err
		}
		defer sess.Close()
		solve.Session = sess.ID()
	}
	var (
		resp *controlapi.SolveResponse
		eg   errgroup.Group
	)
	eg.Go(func() error {
		defer cancel(nil) // the solve is over: end the status stream too
		var err error
		resp, err = b.controller.Solve(ctx, solve)
		return err
	})
	eg.Go(func() error {
		st := &statusStream{ctx: ctx, send: status}
		err := b.controller.Status(&controlapi.StatusRequest{Ref: req.Ref}, st)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		return err
	})
	if err := eg.Wait(); err != nil {
		return "", err
	}
	return resp.ExporterResponse[exptypes.ExporterImageDigestKey], nil
}

// uploadInputs gives the Dockerfile frontend an uploaded context as its
// inputs: the archive, fetched through the uploads and unpacked, and the
// Dockerfile (from the context, or sent apart).
func uploadInputs(ctx context.Context, url, filename string, dockerfile []byte) (map[string]*pb.Definition, error) {
	src := llb.HTTP(url, llb.Filename("context"), llb.WithCustomName("[internal] load build context"))
	context := llb.Scratch().File(llb.Copy(src, "/context", "/", &llb.CopyInfo{AttemptUnpack: true}),
		llb.WithCustomName("[internal] unpack build context"))
	df := context
	if dockerfile != nil {
		if filename == "" {
			filename = "Dockerfile"
		}
		df = llb.Scratch().File(llb.Mkfile(path.Base(filename), 0o644, dockerfile),
			llb.WithCustomName("[internal] load build definition from "+path.Base(filename)))
	}
	out := map[string]*pb.Definition{}
	for name, st := range map[string]llb.State{"context": context, "dockerfile": df} {
		def, err := st.Marshal(ctx)
		if err != nil {
			return nil, err
		}
		out[name] = def.ToPB()
	}
	return out, nil
}

// localSession starts a session whose only service is the given
// credentials, connected to the session manager through a pipe.
func (b *Builder) localSession(ctx context.Context, creds map[string]types.AuthConfig) (*session.Session, error) {
	sess, err := session.NewSession(ctx, "")
	if err != nil {
		return nil, err
	}
	sess.Allow(authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: func(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			return lookupAuth(creds, host), nil
		},
	}))
	go sess.Run(ctx, func(ctx context.Context, _ string, meta map[string][]string) (net.Conn, error) {
		client, server := net.Pipe()
		go b.sessions.HandleConn(ctx, server, meta)
		return client, nil
	})
	return sess, nil
}

// lookupAuth finds host's credentials as the docker CLI keys them.
func lookupAuth(creds map[string]types.AuthConfig, host string) types.AuthConfig {
	keys := []string{host, "https://" + host, "http://" + host}
	if host == authprovider.DockerHubRegistryHost || host == "docker.io" || host == "index.docker.io" {
		keys = append(keys, authprovider.DockerHubConfigfileKey, "docker.io", "index.docker.io")
	}
	for _, k := range keys {
		if ac, ok := creds[k]; ok {
			return ac
		}
	}
	return types.AuthConfig{}
}

// statusStream hands the controller's status updates to a callback.
type statusStream struct {
	ctx  context.Context
	send func([]byte) error
}

func (s *statusStream) Context() context.Context     { return s.ctx }
func (s *statusStream) SetHeader(metadata.MD) error  { return nil }
func (s *statusStream) SendHeader(metadata.MD) error { return nil }
func (s *statusStream) SetTrailer(metadata.MD)       {}
func (s *statusStream) RecvMsg(any) error            { return errors.New("status stream: no input") }
func (s *statusStream) Send(r *controlapi.StatusResponse) error {
	return s.SendMsg(r)
}

func (s *statusStream) SendMsg(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("status stream: unexpected %T", m)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	return s.send(b)
}

// uploadHost names uploaded contexts in the URLs the Dockerfile frontend
// fetches them by; only the builder's HTTP transport knows it.
const uploadHost = "upload.berth.invalid"

// uploads serves uploaded build contexts to BuildKit's HTTP source, as
// dockerd's builder-next serves a request body: the frontend takes an
// HTTP context that is an archive as the build context.
type uploads struct {
	mu    sync.Mutex
	files map[string]string
	next  http.RoundTripper
}

func (u *uploads) add(ref, file string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[ref] = file
	return "http://" + uploadHost + "/" + ref + "/context"
}

func (u *uploads) remove(ref string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.files, ref)
}

func (u *uploads) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != uploadHost {
		return u.next.RoundTrip(r)
	}
	ref := path.Base(path.Dir(r.URL.Path))
	u.mu.Lock()
	file, ok := u.files[ref]
	u.mu.Unlock()
	resp := &http.Response{Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
	if !ok {
		resp.StatusCode, resp.Status = http.StatusNotFound, "404 Not Found"
		resp.Body = http.NoBody
		return resp, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	resp.StatusCode, resp.Status, resp.ContentLength = http.StatusOK, "200 OK", st.Size()
	resp.Header.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	if r.Method == http.MethodHead {
		f.Close()
		resp.Body = http.NoBody
		return resp, nil
	}
	resp.Body = f
	return resp, nil
}
