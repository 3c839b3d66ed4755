//go:build linux

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docker/cli/cli/config/types"
	"github.com/moby/buildkit/identity"

	"github.com/berth-dev/berth/runtime/buildkit"
)

// builds serves POST /build?version=2 as dockerd's builder-next does, for
// API clients that build without buildx (and the Berth desktop and CLI):
// the context comes in the request body (or as a remote URL), progress goes
// out as "moby.buildkit.trace" messages, the image ID as "moby.image.id".
type builds struct {
	b       *buildkit.Builder
	uploads string // where request bodies are spooled
	log     *slog.Logger

	mu      sync.Mutex
	cancels map[string]func() // by the client's buildid
}

func (s *builds) serveBuild(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req, quiet, err := buildRequest(q)
	if err != nil {
		// The engine is still sending the body: read it, so that the
		// answer reaches the client rather than a broken pipe.
		io.Copy(io.Discard, r.Body)
		replyStatus(w, http.StatusBadRequest, err)
		return
	}
	req.Ref = identity.NewID()
	if h := r.Header.Get("X-Registry-Config"); h != "" {
		if req.Auth, err = registryConfig(h); err != nil {
			replyStatus(w, http.StatusBadRequest, err)
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if id := q.Get("buildid"); id != "" {
		s.mu.Lock()
		s.cancels[id] = cancel
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.cancels, id)
			s.mu.Unlock()
		}()
	}
	if req.RemoteContext == "" {
		dockerfile, err := contextName(req.FrontendAttrs["filename"])
		if err != nil || req.FrontendAttrs["filename"] == "" {
			dockerfile = "Dockerfile"
		}
		file, outside, err := spoolContext(s.uploads, r.Body, dockerfile)
		if err != nil {
			replyStatus(w, http.StatusBadRequest, err)
			return
		}
		defer os.Remove(file)
		req.ContextFile, req.Dockerfile = file, outside
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	out := &jsonStream{w: w}
	id, err := s.b.Build(ctx, req, func(trace []byte) error {
		if quiet {
			return nil
		}
		return out.aux("moby.buildkit.trace", trace)
	})
	if err != nil {
		out.fail(err)
		return
	}
	out.aux("moby.image.id", map[string]string{"ID": id})
}

// cancel is POST /build/cancel?id=BUILDID for builds made here.
func (s *builds) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	s.mu.Lock()
	cancel, ok := s.cancels[id]
	s.mu.Unlock()
	if !ok {
		replyStatus(w, http.StatusNotFound, fmt.Errorf("no build with ID %s", id))
		return
	}
	cancel()
	w.WriteHeader(http.StatusOK)
}

// buildRequest reads POST /build's parameters for BuildKit's Dockerfile
// frontend. Options the classic builder has and this one cannot honour are
// refused by name.
func buildRequest(q url.Values) (buildkit.BuildRequest, bool, error) {
	req := buildkit.BuildRequest{FrontendAttrs: map[string]string{}, Tags: q["t"]}
	attrs := req.FrontendAttrs
	if v := q.Get("dockerfile"); v != "" {
		attrs["filename"] = v
	}
	if v := q.Get("target"); v != "" {
		attrs["target"] = v
	}
	if v := q.Get("platform"); v != "" {
		attrs["platform"] = v
	}
	if on(q, "nocache") {
		attrs["no-cache"] = ""
	}
	// buildx's default with dockerd: local images first, unless --pull.
	attrs["image-resolve-mode"] = "local"
	if on(q, "pull") {
		attrs["image-resolve-mode"] = "pull"
	}
	switch v := q.Get("networkmode"); v {
	case "", "default", "bridge":
	case "host", "none":
		attrs["force-network-mode"] = v
	default:
		return req, false, fmt.Errorf("network mode %q is not supported for builds: use default, host or none", v)
	}
	for name, prefix := range map[string]string{"buildargs": "build-arg:", "labels": "label:"} {
		raw := q.Get(name)
		if raw == "" {
			continue
		}
		var m map[string]*string
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return req, false, fmt.Errorf("invalid %s: %v", name, err)
		}
		for k, v := range m {
			if v != nil {
				attrs[prefix+k] = *v
			}
		}
	}
	if raw := q.Get("extrahosts"); raw != "" {
		hosts := q["extrahosts"]
		if strings.HasPrefix(raw, "[") {
			hosts = nil
			if err := json.Unmarshal([]byte(raw), &hosts); err != nil {
				return req, false, fmt.Errorf("invalid extrahosts: %v", err)
			}
		}
		for i, h := range hosts {
			hosts[i] = strings.Replace(h, ":", "=", 1)
		}
		attrs["add-hosts"] = strings.Join(hosts, ",")
	}
	if v := q.Get("shmsize"); v != "" && v != "0" {
		attrs["shm-size"] = v
	}
	switch remote := q.Get("remote"); {
	case remote == "":
	case remote == "client-session":
		return req, false, errors.New("contexts sent through a session (remote=client-session) are not supported: send the context in the request body, or build with buildx")
	case strings.HasPrefix(remote, "http://"), strings.HasPrefix(remote, "https://"), strings.HasPrefix(remote, "git://"),
		strings.HasPrefix(remote, "git@"), strings.HasSuffix(remote, ".git"):
		req.RemoteContext = remote
	default:
		return req, false, fmt.Errorf("remote context %q is not a git or http(s) URL", remote)
	}
	// What the classic builder takes and BuildKit's frontend has no
	// attribute for (dockerd's builder-next ignores most of them; here
	// they are refused by name).
	for _, name := range []string{"memory", "memswap", "cpushares", "cpuquota", "cpuperiod", "cpusetcpus", "cpusetmems", "cgroupparent"} {
		v := q.Get(name)
		numeric := !strings.HasPrefix(name, "cpuset") && name != "cgroupparent"
		if v != "" && !(numeric && v == "0") {
			return req, false, fmt.Errorf("%s is not supported by BuildKit builds: build with DOCKER_BUILDKIT=0 to use it", name)
		}
	}
	for _, name := range []string{"ulimits", "cachefrom", "outputs", "securityopt"} {
		if v := q.Get(name); v != "" && v != "null" && v != "[]" && v != "{}" {
			return req, false, fmt.Errorf("%s is not supported by builds through POST /build: use buildx", name)
		}
	}
	if on(q, "squash") {
		return req, false, errors.New("squash is not supported by BuildKit builds")
	}
	if v := q.Get("isolation"); v != "" && v != "default" {
		return req, false, fmt.Errorf("isolation %q is not supported on linux", v)
	}
	return req, on(q, "q"), nil
}

// registryConfig decodes X-Registry-Config: credentials by registry, as
// the docker CLI sends them (base64url JSON; some clients send std base64).
func registryConfig(h string) (map[string]types.AuthConfig, error) {
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil, fmt.Errorf("invalid X-Registry-Config: %v", err)
		}
	}
	var m map[string]types.AuthConfig
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Config: %v", err)
	}
	for k, ac := range m {
		if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
			delete(m, k)
		}
	}
	return m, nil
}

func on(q url.Values, name string) bool {
	v := strings.ToLower(q.Get(name))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// jsonStream writes the Engine API's JSON message stream, flushing each.
type jsonStream struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (s *jsonStream) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\r', '\n')); err != nil {
		return err
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (s *jsonStream) aux(id string, v any) error {
	return s.write(struct {
		ID  string `json:"id"`
		Aux any    `json:"aux"`
	}{id, v})
}

func (s *jsonStream) fail(err error) {
	s.write(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
}

func replyStatus(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
}

func uploadsDir(root string) (string, error) {
	d := filepath.Join(root, "uploads")
	os.RemoveAll(d) // contexts of builds a previous process did not finish
	return d, os.MkdirAll(d, 0o700)
}
