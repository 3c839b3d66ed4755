//go:build linux

package engineapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// containerRoutes registers /containers/*. Owned by the container work.
func (s *Server) containerRoutes(rt *router) {
	rt.handle(http.MethodPost, "/containers/create", s.containerCreate)
	rt.handle(http.MethodGet, "/containers/json", s.containerList)
	rt.handle(http.MethodGet, "/containers/{id}/json", s.containerInspect)
	rt.handle(http.MethodPost, "/containers/{id}/start", s.containerAction(startContainer))
	rt.handle(http.MethodPost, "/containers/{id}/stop", s.containerAction(stopContainer))
	rt.handle(http.MethodPost, "/containers/{id}/restart", s.containerAction(restartContainer))
	rt.handle(http.MethodPost, "/containers/{id}/kill", s.containerAction(killContainer))
	rt.handle(http.MethodPost, "/containers/{id}/wait", s.containerWait)
	rt.handle(http.MethodDelete, "/containers/{id}", s.containerAction(removeContainer))
	rt.handle(http.MethodPost, "/containers/{id}/rename", s.containerAction(renameContainer))
	rt.handle(http.MethodPost, "/containers/{id}/pause", s.containerAction(pauseContainer))
	rt.handle(http.MethodPost, "/containers/{id}/unpause", s.containerAction(unpauseContainer))
	rt.handle(http.MethodGet, "/containers/{id}/logs", s.containerLogs)
	rt.handle(http.MethodPost, "/containers/{id}/attach", s.containerAttach)
	rt.handle(http.MethodPost, "/containers/{id}/resize", s.resize((*container.Manager).Resize))
	rt.handle(http.MethodGet, "/containers/{id}/top", s.containerTop)
}

// containers is the engine's container manager; it is nil only while the
// engine is being assembled.
func (s *Server) containers() (*container.Manager, error) {
	if s.eng.Containers == nil {
		return nil, errdefs.Unavailable("containers are not available on this engine")
	}
	return s.eng.Containers, nil
}

// createBody is a create request as older clients may send it, with the
// fields the current types no longer have: the container-wide MacAddress
// and the kernel memory limit.
type createBody struct {
	ctr.CreateRequest
	legacy struct {
		MacAddress string
		HostConfig struct{ KernelMemory int64 }
	}
}

// decodeCreate reads a create request body. It is separate so it can be
// fuzzed: any body gives a request or a 400, never a panic.
func decodeCreate(r *http.Request) (*createBody, error) {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return nil, err
	}
	var req createBody
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req.CreateRequest); err != nil {
			return nil, errdefs.InvalidArgument("invalid JSON body: %v", err)
		}
		json.Unmarshal(raw, &req.legacy) // best effort: these fields are optional
	}
	if req.Config == nil {
		return nil, errdefs.InvalidArgument("config cannot be empty in order to create a container")
	}
	return &req, nil
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeCreate(r)
	if err != nil {
		return err
	}
	m, err := s.containers()
	if err != nil {
		return err
	}
	compatWarnings, err := createCompat(r, &req.CreateRequest, req.legacy.MacAddress)
	if req.legacy.HostConfig.KernelMemory > 0 {
		// Gone from the kernel and the API (1.42): refused by name
		// would break old clients that send it, so discarded with the
		// warning dockerd gave where the kernel could not honour it.
		compatWarnings = append(compatWarnings, "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	if err != nil {
		return err
	}
	q := r.URL.Query()
	platform := q.Get("platform")
	if apiBefore(r, "1.41") {
		platform = "" // added in 1.41
	}
	id, warnings, err := m.Create(r.Context(), container.CreateOptions{
		Name: q.Get("name"), Platform: platform,
		Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.NetworkingConfig,
	})
	if err != nil {
		return err
	}
	warnings = append(warnings, compatWarnings...)
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, ctr.CreateResponse{ID: id, Warnings: warnings})
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", 0)
	if err != nil {
		return err
	}
	list, err := m.List(r.Context(), container.ListOptions{All: boolValue(r, "all"), Limit: int(limit), Size: boolValue(r, "size"), Filters: f})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, listCompat(r, list))
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	resp, err := m.Inspect(r.Context(), pathVar(r, "id"), boolValue(r, "size"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inspectCompat(r, resp, m.DesiredMAC(resp.ID)))
}

// containerAction adapts an action on the container named in the path that
// answers 204 No Content.
func (s *Server) containerAction(do func(m *container.Manager, r *http.Request, id string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := s.containers()
		if err != nil {
			return err
		}
		if err := do(m, r, pathVar(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// Start, stop, restart and remove must not be cut short by the client going
// away halfway: they run without the request's cancellation.

func startContainer(m *container.Manager, r *http.Request, id string) error {
	return m.Start(context.WithoutCancel(r.Context()), id)
}

func stopContainer(m *container.Manager, r *http.Request, id string) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return m.Stop(context.WithoutCancel(r.Context()), id, opts)
}

func restartContainer(m *container.Manager, r *http.Request, id string) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	return m.Restart(context.WithoutCancel(r.Context()), id, opts)
}

func killContainer(m *container.Manager, r *http.Request, id string) error {
	return m.Kill(r.Context(), id, r.URL.Query().Get("signal"))
}

func removeContainer(m *container.Manager, r *http.Request, id string) error {
	if boolValue(r, "link") {
		return m.RemoveLink(id)
	}
	return m.Remove(context.WithoutCancel(r.Context()), id, container.RemoveOptions{Force: boolValue(r, "force"), RemoveVolumes: boolValue(r, "v")})
}

func renameContainer(m *container.Manager, r *http.Request, id string) error {
	return m.Rename(id, r.URL.Query().Get("name"))
}

func pauseContainer(m *container.Manager, r *http.Request, id string) error {
	return m.Pause(r.Context(), id)
}

func unpauseContainer(m *container.Manager, r *http.Request, id string) error {
	return m.Unpause(r.Context(), id)
}

// resize adapts a terminal resize (?h=&w=) of a container or an exec.
func (s *Server) resize(do func(m *container.Manager, id string, h, w uint) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := s.containers()
		if err != nil {
			return err
		}
		h, wd, err := resizeParams(r)
		if err != nil {
			return err
		}
		if err := do(m, pathVar(r, "id"), h, wd); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// stopOptions reads ?t= (seconds) and ?signal= (from API 1.42) of stop and
// restart.
func stopOptions(r *http.Request) (container.StopOptions, error) {
	opts := container.StopOptions{Signal: r.URL.Query().Get("signal")}
	if apiBefore(r, "1.42") {
		opts.Signal = ""
	}
	if r.URL.Query().Get("t") != "" {
		t, err := intValue(r, "t", 0)
		if err != nil {
			return opts, err
		}
		n := int(t)
		opts.Timeout = &n
	}
	if opts.Signal != "" {
		if _, err := container.ParseSignal(opts.Signal, 0); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// containerWait answers the headers as soon as the wait is registered, so
// the client can start the container knowing no exit will be missed.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	ch, err := m.Wait(r.Context(), pathVar(r, "id"), ctr.WaitCondition(r.URL.Query().Get("condition")))
	if err != nil {
		return err
	}
	out := streamWriter(w, "application/json")
	res := <-ch
	resp := ctr.WaitResponse{StatusCode: int64(res.ExitCode)}
	if res.StateError != "" {
		resp.Error = &ctr.WaitExitError{Message: res.StateError}
	}
	if res.Err != nil {
		if r.Context().Err() != nil {
			return nil // the client left
		}
		resp.Error = &ctr.WaitExitError{Message: res.Err.Error()}
	}
	return jsonTo(out, resp)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := container.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Tail: -1}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidArgument("Bad parameters: you must choose at least one stream")
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return errdefs.InvalidArgument("invalid value for tail: %q is not a number or \"all\"", t)
		}
		if n >= 0 {
			opts.Tail = n
		}
	}
	if opts.Since, err = parseTimestamp(q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseTimestamp(q.Get("until")); err != nil {
		return err
	}
	c, err := m.Get(pathVar(r, "id"))
	if err != nil {
		return err
	}
	insp, err := m.Inspect(r.Context(), c.ID(), false)
	if err != nil {
		return err
	}
	if insp.HostConfig != nil && insp.HostConfig.LogConfig.Type == "none" {
		return errdefs.NotImplemented("configured logging driver does not support reading")
	}
	tty := insp.Config.Tty
	timestamps := boolValue(r, "timestamps")
	ct := multiplexedStream
	if tty || apiBefore(r, "1.42") {
		ct = rawStream // the type named multiplexed streams from 1.42 on
	}
	stdout, stderr := outputWriters(streamWriter(w, ct), tty)
	err = m.Logs(r.Context(), c.ID(), opts, func(msg container.LogMessage) error {
		out := stdout
		if msg.Stream == "stderr" {
			out = stderr
		}
		line := msg.Line
		if timestamps {
			line = append([]byte(msg.Time.UTC().Format(time.RFC3339Nano)+" "), line...)
		}
		_, err := out.Write(line)
		return err
	})
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("logs", "container", c.ID(), "err", err)
	}
	return nil
}

// containerAttach hijacks the connection. The attachment is registered
// before the response is written, so a start that follows it cannot lose
// the container's first output.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
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
	conn, buffered, err := hijack(w, r, !at.Tty)
	if err != nil {
		at.Close()
		return err
	}
	defer closeHijacked(conn)
	stdout, stderr := outputWriters(conn, at.Tty)
	stdin := io.MultiReader(buffered, conn)
	if err := at.Run(context.WithoutCancel(r.Context()), stdin, stdout, stderr); err != nil && !errors.Is(err, container.ErrDetached) {
		s.log.Debug("attach", "container", pathVar(r, "id"), "err", err)
	}
	return nil
}

func resizeParams(r *http.Request) (h, w uint, err error) {
	hh, err := intValue(r, "h", 0)
	if err != nil {
		return 0, 0, err
	}
	ww, err := intValue(r, "w", 0)
	if err != nil {
		return 0, 0, err
	}
	if hh < 0 || ww < 0 || hh > 1<<16-1 || ww > 1<<16-1 {
		return 0, 0, errdefs.InvalidArgument("invalid terminal size %dx%d", hh, ww)
	}
	return uint(hh), uint(ww), nil
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	m, err := s.containers()
	if err != nil {
		return err
	}
	psArgs := strings.TrimSpace(r.URL.Query().Get("ps_args"))
	top, err := m.Top(pathVar(r, "id"), psArgs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, top)
}
