//go:build linux

package engineapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client/pkg/progress"
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
	rt.handle(http.MethodPost, "/images/load", s.imageLoad)
	rt.handle(http.MethodGet, "/images/get", s.imageSave)
	rt.handle(http.MethodGet, "/images/{name...}/get", s.imageSave)
	rt.handle(http.MethodPost, "/images/{name...}/push", s.imagePush)
	rt.handle(http.MethodGet, "/images/{name...}/json", s.imageInspect)
	rt.handle(http.MethodGet, "/images/{name...}/history", s.imageHistory)
	rt.handle(http.MethodPost, "/images/{name...}/tag", s.imageTag)
	rt.handle(http.MethodDelete, "/images/{name...}", s.imageDelete)
	rt.handle(http.MethodPost, "/auth", s.auth)
	rt.handle(http.MethodPost, "/commit", s.commit)
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	// The "filter" parameter (a reference pattern) of API versions before
	// 1.25; later ones ignore it, as dockerd does.
	if v := r.URL.Query().Get("filter"); v != "" && apiBefore(r, "1.25") && !f.Has("reference") {
		f.Add("reference", v)
	}
	list, err := s.eng.Images.Summaries(f, boolValue(r, "all"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, imageListCompat(r, list))
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
		return s.imageImport(w, r)
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
	legacy, err := s.eng.Images.Legacy(resp.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, imageInspectCompat(r, resp, legacy))
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

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request) error {
	ref := pathVar(r, "name")
	if tag := r.URL.Query().Get("tag"); tag != "" {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return errdefs.InvalidArgument("invalid reference format: %q", ref)
		}
		t, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return errdefs.InvalidArgument("invalid tag %q: %v", tag, err)
		}
		ref = t.String()
	}
	auth, err := image.DecodeAuth(r.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	out := newLazyStream(w)
	err = s.eng.Images.Push(r.Context(), ref, image.PushOptions{Auth: auth}, streamformatter.NewJSONProgressOutput(out, false))
	return out.finish(err)
}

// imageSave is GET /images/get?names=… and GET /images/{name}/get: a tar
// stream. Save resolves every name before its first byte, so a missing one
// is a plain 404.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if n := pathVar(r, "name"); n != "" {
		names = []string{n}
	}
	raw := &lazyRaw{w: w, ct: "application/x-tar"}
	buf := bufio.NewWriterSize(raw, 1<<20)
	err := s.eng.Images.Save(r.Context(), names, buf)
	if err == nil {
		err = buf.Flush()
	}
	if err != nil && !raw.started {
		return err
	}
	if err != nil {
		// Mid-stream the status is sent: end the connection so the client
		// sees a truncated archive rather than a complete-looking one.
		s.log.Warn("image save", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !raw.started {
		raw.Write(nil)
	}
	return nil
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	quiet := boolValue(r, "quiet")
	out := newLazyStream(w)
	lines := &streamLines{w: out}
	prog := progress.DiscardOutput()
	if !quiet {
		prog = streamformatter.NewJSONProgressOutput(out, false)
	}
	err := s.eng.Images.Load(r.Context(), r.Body, lines, prog)
	return out.finish(err)
}

// streamLines turns text written to it into {"stream": "…"} messages.
type streamLines struct{ w io.Writer }

func (l *streamLines) Write(p []byte) (int, error) {
	b, err := json.Marshal(jsonstream.Message{Stream: string(p)})
	if err != nil {
		return 0, err
	}
	if _, err := l.w.Write(append(b, '\r', '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lazyRaw starts a 200 response of type ct on the first write.
type lazyRaw struct {
	w       http.ResponseWriter
	ct      string
	out     io.Writer
	started bool
}

func (l *lazyRaw) Write(p []byte) (int, error) {
	if !l.started {
		l.out = streamWriter(l.w, l.ct)
		l.started = true
	}
	return l.out.Write(p)
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
