//go:build linux

package engineapi

import (
	"net/http"
	"strconv"

	"github.com/distribution/reference"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
)

// Swarm mode and plugins are not part of Berth. Their endpoints answer as
// a dockerd that is not in a swarm and has no plugins installed does, so
// clients that probe them (and tolerate those answers) work unchanged.
const (
	errNoSwarm         = "This node is not part of a swarm"
	errSwarmNotManager = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
)

func (s *Server) unsupportedRoutes(rt *router) {
	notManager := func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Unavailable("%s", errSwarmNotManager)
	}
	noSwarmMode := func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Unavailable("swarm mode is not supported by Berth: this node cannot create or join a swarm")
	}
	rt.handle(http.MethodGet, "/swarm", notManager)
	rt.handle(http.MethodPost, "/swarm/init", noSwarmMode)
	rt.handle(http.MethodPost, "/swarm/join", noSwarmMode)
	rt.handle(http.MethodPost, "/swarm/leave", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Unavailable("%s", errNoSwarm)
	})
	rt.handle(http.MethodPost, "/swarm/update", notManager)
	rt.handle(http.MethodGet, "/swarm/unlockkey", notManager)
	rt.handle(http.MethodPost, "/swarm/unlock", notManager)
	for _, kind := range []string{"services", "nodes", "tasks", "secrets", "configs"} {
		rt.handle(http.MethodGet, "/"+kind, notManager)
		rt.handle(http.MethodGet, "/"+kind+"/{id}", notManager)
		switch kind {
		case "services", "secrets", "configs":
			rt.handle(http.MethodPost, "/"+kind+"/create", notManager)
		}
		switch kind {
		case "services", "tasks":
			rt.handle(http.MethodGet, "/"+kind+"/{id}/logs", notManager)
		}
		if kind != "tasks" {
			rt.handle(http.MethodDelete, "/"+kind+"/{id}", notManager)
			rt.handle(http.MethodPost, "/"+kind+"/{id}/update", notManager)
		}
	}

	// Plugins: none are installed, and none can be.
	noPlugins := func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotImplemented("plugins are not supported by Berth")
	}
	pluginNotFound := func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotFound("plugin %q not found", pathVar(r, "name"))
	}
	rt.handle(http.MethodGet, "/plugins", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters.Parse(r.URL.Query().Get("filters"))
		if err != nil {
			return err
		}
		if err := f.Validate("capability", "enabled"); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, []struct{}{})
	})
	rt.handle(http.MethodGet, "/plugins/privileges", noPlugins)
	rt.handle(http.MethodPost, "/plugins/pull", noPlugins)
	rt.handle(http.MethodPost, "/plugins/create", noPlugins)
	rt.handle(http.MethodGet, "/plugins/{name...}/json", pluginNotFound)
	rt.handle(http.MethodPost, "/plugins/{name...}/enable", func(w http.ResponseWriter, r *http.Request) error {
		// dockerd reads the timeout first: without one it answers 500.
		if _, err := strconv.Atoi(r.URL.Query().Get("timeout")); err != nil {
			return err
		}
		return pluginNotFound(w, r)
	})
	for _, action := range []string{"disable", "push", "set"} {
		rt.handle(http.MethodPost, "/plugins/{name...}/"+action, pluginNotFound)
	}
	rt.handle(http.MethodPost, "/plugins/{name...}/upgrade", func(w http.ResponseWriter, r *http.Request) error {
		// upgrade names the plugin as a reference, with its tag.
		name := pathVar(r, "name")
		if named, err := reference.ParseNormalizedNamed(name); err == nil {
			name = reference.FamiliarString(reference.TagNameOnly(named))
		}
		return errdefs.NotFound("plugin %q not found", name)
	})
	rt.handle(http.MethodDelete, "/plugins/{name...}", pluginNotFound)
}
