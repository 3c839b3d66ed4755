//go:build linux

package engineapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client/pkg/progress"
	"github.com/moby/moby/client/pkg/streamformatter"
	"golang.org/x/net/websocket"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
	"github.com/berth-dev/berth/runtime/image"
)

// toolRoutes registers what the tools around docker use beyond run and
// build: docker update, export, import, diff, search, and the distribution
// and websocket attach endpoints.
func (s *Server) toolRoutes(rt *router) {
	rt.handle(http.MethodPost, "/containers/{id}/update", s.containerUpdate)
	rt.handle(http.MethodGet, "/containers/{id}/export", s.containerExport)
	rt.handle(http.MethodGet, "/containers/{id}/changes", s.containerChanges)
	rt.handle(http.MethodGet, "/containers/{id}/attach/ws", s.containerAttachWS)
	rt.handle(http.MethodGet, "/images/search", s.imageSearch)
	rt.handle(http.MethodGet, "/distribution/{name...}/json", s.distributionInspect)
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var uc ctr.UpdateConfig
	if err := decodeJSON(r, &uc); err != nil {
		return err
	}
	m, err := s.containers()
	if err != nil {
		return err
	}
	warnings, err := m.Update(r.Context(), pathVar(r, "id"), uc)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ctr.UpdateResponse{Warnings: warnings})
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	started := false
	err = m.Export(pathVar(r, "id"), func() (io.Writer, error) {
		started = true
		return streamWriter(w, "application/x-tar"), nil
	})
	if err != nil && started {
		// The status is sent: end the connection so the client sees a
		// truncated archive rather than a complete-looking one.
		s.log.Warn("export cut short", "container", pathVar(r, "id"), "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	changes, err := m.Changes(pathVar(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, changes)
}

// containerAttachWS is attach over a websocket: stdin from the client's
// frames, the output as frames of raw bytes (never multiplexed), as
// dockerd serves it. Browsers cannot reach it: the engine's sockets are
// unix sockets, and its TCP listeners refuse requests with an Origin.
func (s *Server) containerAttachWS(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	at, err := m.Attach(pathVar(r, "id"), container.AttachOptions{
		Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Logs: boolValue(r, "logs"), Stream: boolValue(r, "stream"), DetachKeys: r.URL.Query().Get("detachKeys"),
	})
	if err != nil {
		return err
	}
	binary := !versionLess(apiVersion(r), "1.42")
	served := false
	defer func() {
		if !served {
			at.Close() // the handshake failed: nothing attached
		}
	}()
	websocket.Server{
		// Any Origin: the client is a program on the engine's socket.
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(conn *websocket.Conn) {
			served = true
			defer conn.Close()
			if binary {
				conn.PayloadType = websocket.BinaryFrame
			}
			if err := at.Run(context.WithoutCancel(r.Context()), conn, conn, conn); err != nil && !errors.Is(err, container.ErrDetached) {
				s.log.Debug("attach/ws", "container", pathVar(r, "id"), "err", err)
			}
		},
	}.ServeHTTP(w, r)
	return nil
}

func (s *Server) imageSearch(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	term := q.Get("term")
	if term == "" {
		return errdefs.InvalidArgument("search term is required")
	}
	limit, err := intValue(r, "limit", 25)
	if err != nil {
		return err
	}
	f, err := filters.Parse(q.Get("filters"))
	if err != nil {
		return err
	}
	keep, err := searchFilter(f)
	if err != nil {
		return err
	}
	auth, err := image.DecodeAuth(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	results, err := s.eng.Images.Search(r.Context(), term, int(limit), auth)
	if err != nil {
		return err
	}
	out := []registry.SearchResult{}
	for _, res := range results {
		if keep(res) {
			out = append(out, res)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// searchFilter reads docker search's --filter: is-official, is-automated
// (always false now, as on Docker Hub) and stars.
func searchFilter(f filters.Args) (func(registry.SearchResult) bool, error) {
	if err := f.Validate("is-official", "is-automated", "stars"); err != nil {
		return nil, err
	}
	boolFilter := func(key string) (*bool, error) {
		vals := f.Get(key)
		if len(vals) == 0 {
			return nil, nil
		}
		b, err := strconv.ParseBool(vals[0])
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid filter '%s=%s'", key, vals[0])
		}
		return &b, nil
	}
	official, err := boolFilter("is-official")
	if err != nil {
		return nil, err
	}
	automated, err := boolFilter("is-automated")
	if err != nil {
		return nil, err
	}
	stars := 0
	for _, v := range f.Get("stars") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid filter 'stars=%s'", v)
		}
		stars = max(stars, n)
	}
	return func(res registry.SearchResult) bool {
		return (official == nil || res.IsOfficial == *official) &&
			(automated == nil || res.IsAutomated == *automated) && res.StarCount >= stars
	}, nil
}

func (s *Server) distributionInspect(w http.ResponseWriter, r *http.Request) error {
	auth, err := image.DecodeAuth(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	di, err := s.eng.Images.DistributionInspect(r.Context(), pathVar(r, "name"), auth)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, di)
}

// imageImport is POST /images/create?fromSrc=- (the body) or =URL: docker
// import. Progress is streamed as dockerd does; the last message is the
// new image's ID.
func (s *Server) imageImport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref := ""
	if repo := q.Get("repo"); repo != "" {
		var err error
		if ref, err = pullRef(repo, q.Get("tag")); err != nil {
			return err
		}
	}
	out := newLazyStream(w)
	prog := streamformatter.NewJSONProgressOutput(out, false)
	var src io.Reader = r.Body
	if from := q.Get("fromSrc"); from != "-" {
		rc, err := s.eng.Images.Download(r.Context(), from, prog)
		if err != nil {
			return out.finish(err)
		}
		defer rc.Close()
		src = rc
	}
	img, err := s.eng.Images.ImportRootFS(r.Context(), src, image.ImportRootFSOptions{
		Ref: ref, Message: q.Get("message"), Changes: q["changes"], Platform: q.Get("platform"),
	})
	if err != nil {
		return out.finish(err)
	}
	progress.Message(prog, "", img.ID)
	return out.finish(nil)
}

// fillRegistryInfo adds the registry mirrors and the proxy to /info (docker
// info's "Registry Mirrors", "HTTP Proxy" …), credentials masked as dockerd
// masks them.
func (s *Server) fillRegistryInfo(info *system.Info) {
	cfg := s.eng.Config
	if info.RegistryConfig == nil {
		info.RegistryConfig = &registry.ServiceConfig{IndexConfigs: map[string]*registry.IndexInfo{}}
	}
	mirrors := []string{} // an empty list, not null, as dockerd sends it
	for _, m := range cfg.RegistryMirrors {
		mirrors = append(mirrors, strings.TrimSuffix(m, "/")+"/")
	}
	info.RegistryConfig.Mirrors = mirrors
	hub := info.RegistryConfig.IndexConfigs["docker.io"]
	if hub == nil {
		hub = &registry.IndexInfo{Name: "docker.io", Secure: true, Official: true}
		info.RegistryConfig.IndexConfigs["docker.io"] = hub
	}
	hub.Mirrors = mirrors
	info.HTTPProxy = maskCredentials(cfg.Proxy.HTTPProxy)
	info.HTTPSProxy = maskCredentials(cfg.Proxy.HTTPSProxy)
	info.NoProxy = cfg.Proxy.NoProxy
}

// maskCredentials hides a proxy URL's user and password.
func maskCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.UserPassword("xxxxx", "xxxxx")
	return u.String()
}
