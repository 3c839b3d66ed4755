//go:build linux

package engineapi

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/streamformatter"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
	"github.com/berth-dev/berth/runtime/image"
)

// imageRoutes registers /images/* and /auth. Owned by the image work.
func (s *Server) imageRoutes(rt *router) {
	rt.handle(http.MethodGet, "/images/json", s.imageList)
	rt.handle(http.MethodPost, "/images/create", s.imageCreate)
	rt.handle(http.MethodPost, "/images/prune", s.imagePrune)
	rt.handle(http.MethodGet, "/images/{name...}/json", s.imageInspect)
	rt.handle(http.MethodGet, "/images/{name...}/history", s.imageHistory)
	rt.handle(http.MethodPost, "/images/{name...}/tag", s.imageTag)
	rt.handle(http.MethodDelete, "/images/{name...}", s.imageDelete)
	rt.handle(http.MethodPost, "/auth", s.auth)
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	// The deprecated "filter" parameter is a reference pattern.
	if v := r.URL.Query().Get("filter"); v != "" {
		f.Add("reference", v)
	}
	list, err := s.eng.Images.Summaries(f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

// pullRef builds the reference POST /images/create asks for from fromImage
// and tag (which may also be a digest).
func pullRef(fromImage, tag string) (string, error) {
	named, err := reference.ParseNormalizedNamed(fromImage)
	if err != nil {
		return "", errdefs.InvalidArgument("invalid reference format: %q", fromImage)
	}
	if tag == "" {
		return named.String(), nil
	}
	if d, err := digest.Parse(tag); err == nil {
		c, err := reference.WithDigest(reference.TrimNamed(named), d)
		if err != nil {
			return "", errdefs.InvalidArgument("invalid digest %q: %v", tag, err)
		}
		return c.String(), nil
	}
	t, err := reference.WithTag(reference.TrimNamed(named), tag)
	if err != nil {
		return "", errdefs.InvalidArgument("invalid tag %q: %v", tag, err)
	}
	return t.String(), nil
}

func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		return errdefs.NotImplemented("importing a root file system (docker import) is not supported by Berth yet")
	}
	from := q.Get("fromImage")
	if from == "" {
		return errdefs.InvalidArgument("fromImage is required")
	}
	ref, err := pullRef(from, q.Get("tag"))
	if err != nil {
		return err
	}
	auth, err := image.DecodeAuth(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	out := newLazyStream(w)
	_, err = s.eng.Images.Pull(r.Context(), ref, image.PullOptions{Platform: q.Get("platform"), Auth: auth},
		streamformatter.NewJSONProgressOutput(out, false))
	return out.finish(err)
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.eng.Images.Inspect(pathVar(r, "name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request) error {
	h, err := s.eng.Images.History(pathVar(r, "name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request) error {
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		return errdefs.InvalidArgument("repository name must be given (repo)")
	}
	target := repo
	if tag != "" {
		named, err := reference.ParseNormalizedNamed(repo)
		if err != nil {
			return errdefs.InvalidArgument("invalid reference format: %q", repo)
		}
		t, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return errdefs.InvalidArgument("invalid tag %q: %v", tag, err)
		}
		target = t.String()
	}
	if err := s.eng.Images.Tag(pathVar(r, "name"), target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.eng.Images.Remove(r.Context(), pathVar(r, "name"), boolValue(r, "force"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	report, err := s.eng.Images.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, report)
}

// auth is POST /auth (docker login): the credentials are checked against
// the registry; nothing is stored in the engine.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var ac registry.AuthConfig
	if err := decodeJSON(r, &ac); err != nil {
		return err
	}
	status, err := s.eng.Images.Login(r.Context(), ac)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registry.AuthResponse{Status: status})
}

// lazyStream is a JSON progress stream that starts (200 + headers) on its
// first write, so a failure before any progress (no such image, bad
// credentials) still gets its proper status code, as with dockerd.
type lazyStream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	out     io.Writer
	started bool
}

func newLazyStream(w http.ResponseWriter) *lazyStream { return &lazyStream{w: w} }

func (l *lazyStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.out = streamWriter(l.w, "application/json")
		l.started = true
	}
	return l.out.Write(p)
}

// finish ends the stream: an error is returned for the caller to send as a
// status when nothing was streamed yet, else written into the stream.
func (l *lazyStream) finish(err error) error {
	if err == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.started {
			l.out = streamWriter(l.w, "application/json")
			l.started = true
		}
		return nil
	}
	l.mu.Lock()
	started := l.started
	l.mu.Unlock()
	if !started {
		return err
	}
	writeStreamError(l, err)
	return nil
}

// writeStreamError sends err as the stream's last message, in both the
// current (errorDetail) and legacy (error) fields.
func writeStreamError(w io.Writer, err error) {
	b, _ := json.Marshal(struct {
		jsonstream.Message
		ErrorMessage string `json:"error,omitempty"`
	}{Message: jsonstream.Message{Error: &jsonstream.Error{Message: err.Error()}}, ErrorMessage: err.Error()})
	w.Write(append(b, '\r', '\n'))
}
