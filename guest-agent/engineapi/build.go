//go:build linux

package engineapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/progress"
	"github.com/moby/moby/client/pkg/streamformatter"

	rtbuild "github.com/berth-dev/berth/runtime/build"
	"github.com/berth-dev/berth/runtime/buildkit/link"
	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// buildRoutes registers the classic builder's API. Owned by the build work.
func (s *Server) buildRoutes(rt *router) {
	rt.handle(http.MethodPost, "/build", s.build)
	rt.handle(http.MethodPost, "/build/prune", s.buildPrune)
	rt.handle(http.MethodPost, "/build/cancel", s.buildCancel)
}

// buildOptions reads POST /build's parameters as dockerd does.
func buildOptions(r *http.Request) (rtbuild.Options, error) {
	q := r.URL.Query()
	var o rtbuild.Options
	if v := q.Get("version"); v != "" && v != string(build.BuilderV1) {
		return o, errdefs.InvalidArgument("builder version %q is not supported: use 1 (classic) or 2 (BuildKit)", v)
	}
	if q.Get("remote") != "" {
		return o, errdefs.NotImplemented("remote build contexts (%s) are not supported: send the context as a tar archive", q.Get("remote"))
	}
	if boolValue(r, "squash") {
		return o, errdefs.NotImplemented("squash is not supported by Berth's builder")
	}
	if iso := q.Get("isolation"); iso != "" && iso != "default" {
		return o, errdefs.InvalidArgument("isolation %q is not supported on linux", iso)
	}
	if len(q["securityopt"]) > 0 {
		return o, errdefs.NotImplemented("security options for builds are not supported by Berth's builder")
	}
	if v := q.Get("outputs"); v != "" && v != "null" && v != "[]" {
		return o, errdefs.NotImplemented("build outputs need BuildKit; Berth's builder makes an image")
	}
	o.Tags = q["t"]
	o.Dockerfile = q.Get("dockerfile")
	o.Target = q.Get("target")
	o.Platform = q.Get("platform")
	o.BuildID = q.Get("buildid")
	o.NoCache = boolValue(r, "nocache")
	o.Pull = boolValue(r, "pull")
	o.Remove = boolValueOr(r, "rm", true)
	o.ForceRemove = boolValue(r, "forcerm")
	o.Run.NetworkMode = q.Get("networkmode")
	o.Run.CPUSetCPUs = q.Get("cpusetcpus")
	o.Run.CPUSetMems = q.Get("cpusetmems")
	o.Run.CgroupParent = q.Get("cgroupparent")
	for name, p := range map[string]*int64{"memory": &o.Run.Memory, "memswap": &o.Run.MemorySwap, "cpushares": &o.Run.CPUShares,
		"cpuquota": &o.Run.CPUQuota, "cpuperiod": &o.Run.CPUPeriod, "shmsize": &o.Run.ShmSize} {
		v, err := intValue(r, name, 0)
		if err != nil {
			return o, err
		}
		*p = v
	}
	for name, v := range map[string]any{"buildargs": &o.BuildArgs, "labels": &o.Labels, "extrahosts": &o.Run.ExtraHosts} {
		raw := q.Get(name)
		if raw == "" {
			continue
		}
		if name == "extrahosts" && !strings.HasPrefix(raw, "[") {
			o.Run.ExtraHosts = q["extrahosts"] // sent as repeated values
			continue
		}
		if err := json.Unmarshal([]byte(raw), v); err != nil {
			return o, errdefs.InvalidArgument("invalid %s: %v", name, err)
		}
	}
	// X-Registry-Config: credentials by registry, for pulls of base images.
	if h := r.Header.Get("X-Registry-Config"); h != "" {
		raw, err := base64.URLEncoding.DecodeString(h)
		if err != nil {
			raw, err = base64.StdEncoding.DecodeString(h)
		}
		if err == nil {
			json.Unmarshal(raw, &o.Auth)
		}
	}
	return o, nil
}

// build is POST /build: the body is the context tar; the answer is a JSON
// stream of the build's log, pull progress, the image ID (aux) and, on
// failure, the error (with the RUN's exit code, which the CLI exits with).
// With q=1 the log is held back: only the image ID is sent, or on failure
// the log and the error.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("version") == string(build.BuilderBuildKit) {
		return s.buildkitForward(w, r, "/build")
	}
	opts, err := buildOptions(r)
	if err != nil {
		return err
	}
	out := newLazyStream(w)
	quiet := boolValue(r, "q")
	held := &quietLog{max: maxQuietHeld}
	var log io.Writer = out
	if quiet {
		log = held
	}
	opts.Stdout = streamWriterOf(log, "", "")
	opts.Stderr = streamWriterOf(log, "\033[91m", "\033[0m")
	opts.Progress = streamformatter.NewJSONProgressOutput(log, false)
	if quiet {
		opts.Progress = progress.DiscardOutput()
	}
	id, err := s.eng.Builds.Build(r.Context(), r.Body, opts)
	if err != nil {
		if quiet && !held.empty() {
			held.writeTo(out)
		}
		code := 0
		var exit *rtbuild.ExitError
		if errors.As(err, &exit) {
			code = exit.Code
		}
		return out.finishCode(err, code)
	}
	// The image ID as an aux message (API 1.30 on), which a quiet build
	// holds back with the log: it answers with the ID alone, as dockerd.
	if quiet {
		jsonTo(out, jsonstream.Message{Stream: id + "\n"})
	} else if !apiBefore(r, "1.30") {
		aux, _ := json.Marshal(build.Result{ID: id})
		raw := json.RawMessage(aux)
		jsonTo(out, jsonstream.Message{Aux: &raw})
	}
	return out.finish(nil)
}

// streamWriterOf frames each write as a {"stream": …} message.
func streamWriterOf(w io.Writer, prefix, suffix string) io.Writer {
	return streamFormatter{w: w, prefix: prefix, suffix: suffix}
}

type streamFormatter struct {
	w              io.Writer
	prefix, suffix string
}

func (f streamFormatter) Write(p []byte) (int, error) {
	b, err := json.Marshal(jsonstream.Message{Stream: f.prefix + string(p) + f.suffix})
	if err != nil {
		return 0, err
	}
	if _, err := f.w.Write(append(b, '\r', '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}

// finishCode ends a stream with err, carrying code in errorDetail.
func (l *lazyStream) finishCode(err error, code int) error {
	l.mu.Lock()
	started := l.started
	l.mu.Unlock()
	if !started {
		return err
	}
	b, _ := json.Marshal(struct {
		jsonstream.Message
		ErrorMessage string `json:"error,omitempty"`
	}{Message: jsonstream.Message{Error: &jsonstream.Error{Code: code, Message: err.Error()}}, ErrorMessage: err.Error()})
	l.Write(append(b, '\r', '\n'))
	return nil
}

// buildPrune is POST /build/prune (docker builder prune).
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	req, err := buildkitPruneRequest(r, f)
	if err != nil {
		return err
	}
	report, err := s.buildkitPrune(r.Context(), req)
	if err != nil {
		return err
	}
	// The classic builder's step images have none of the fields filters
	// name: with filters, only BuildKit's cache is pruned.
	if len(f) == 0 {
		classic, err := s.eng.Builds.Prune(r.Context(), req.All)
		if err != nil {
			return err
		}
		report.CachesDeleted = append(report.CachesDeleted, classic.CachesDeleted...)
		report.SpaceReclaimed += classic.SpaceReclaimed
	}
	if report.CachesDeleted == nil {
		report.CachesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, report)
}

// buildkitPruneRequest reads POST /build/prune's parameters as dockerd
// passes them to BuildKit: "until" (or its old name "unused-for") keeps
// what was used more recently; the record fields become BuildKit filters.
func buildkitPruneRequest(r *http.Request, f filters.Args) (link.PruneRequest, error) {
	req := link.PruneRequest{All: boolValue(r, "all")}
	for name, p := range map[string]*int64{"keep-storage": &req.KeepStorage, "reserved-space": &req.ReservedSpace,
		"max-used-space": &req.MaxUsedSpace, "min-free-space": &req.MinFreeSpace} {
		v, err := intValue(r, name, 0)
		if err != nil {
			return req, err
		}
		*p = v
	}
	for key := range f {
		vals := f.Get(key)
		switch key {
		case "until", "unused-for":
			if len(vals) != 1 {
				return req, errdefs.InvalidArgument("filters expect only one value for %q", key)
			}
			d, err := time.ParseDuration(vals[0])
			if err != nil {
				return req, errdefs.InvalidArgument("%q filter expects a duration (e.g., '24h'): %v", key, err)
			}
			req.KeepDuration = d
		case "id", "parent", "type", "description", "inuse", "shared", "private":
			if len(vals) != 1 {
				return req, errdefs.InvalidArgument("filters expect only one value for %q", key)
			}
			op := "=="
			if key == "id" {
				op = "~="
			}
			req.Filters = append(req.Filters, key+op+vals[0])
		default:
			return req, errdefs.InvalidArgument("invalid filter %q", key)
		}
	}
	return req, nil
}

// buildCancel is POST /build/cancel?id=BUILDID.
func (s *Server) buildCancel(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("id")
	if id == "" {
		return errdefs.InvalidArgument("build ID not provided")
	}
	if err := s.eng.Builds.Cancel(id); err != nil {
		if errdefs.IsNotFound(err) && s.bk != nil && s.bk.Running() {
			return s.buildkitForward(w, r, "/build/cancel")
		}
		if !errdefs.IsNotFound(err) {
			return err
		}
		// No such build (it ended, or never was): nothing to cancel,
		// which dockerd answers with a 200 too.
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
