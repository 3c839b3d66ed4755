package compat_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Older API versions, compared with dockerd 20.10 (which speaks them), and
// the newer ones dockerd 20.10 does not speak, checked on Berth alone
// against the Engine API's version history.

func init() {
	for _, v := range []string{"1.24", "1.30", "1.40"} {
		v := v
		register(&scenario{name: "versions/" + v, run: func(c *C, e *env) {
			c.Version(v)
			c.Get("/version")
			c.Get("/images/%s/json", e.rich)
			c.Get("/images/json?filters=%s", `{"reference":["`+e.rich+`"]}`)
			id := c.Create(e, "a", map[string]any{"Cmd": sh("echo hi"), "Labels": map[string]string{"v": v}})
			c.Start(id)
			c.Wait(id)
			c.Inspect(id)
			c.Get("/containers/json?all=1&filters=%s", `{"label":["v=`+v+`"]}`)
			c.Get("/containers/%s/logs?stdout=1", id)
			c.Remove(id)
			c.Get("/networks/%s", "host")
			c.Get("/volumes?filters=%s", `{"name":["nosuchvolume"]}`)
		}})
	}

	// API 1.42 and later: the multiplexed-stream content type, volume
	// prune of anonymous volumes only.
	register(&scenario{name: "versions/1.42-streams-and-prune", berthOnly: "API 1.42 (dockerd 20.10 speaks up to 1.41)", run: func(c *C, e *env) {
		c.Version("1.42")
		id := c.Create(e, "a", map[string]any{"Cmd": sh("echo out; echo err >&2")})
		s := c.Open(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdout=1&stderr=1", Args: []any{id}})
		c.Start(id)
		s.Finish()
		c.Check(s.o.ctype == "application/vnd.docker.multiplexed-stream" && s.o.framing == "mux", "attach (1.42, no TTY): want a multiplexed stream so named, got %q %s", s.o.ctype, s.o.framing)
		r := c.Get("/containers/%s/logs?stdout=1&stderr=1", id)
		c.Check(mediaType(r.Header) == "application/vnd.docker.multiplexed-stream", "logs (1.42, no TTY): content type %q", mediaType(r.Header))
		c.Remove(id)
		named, anon := c.Name("named"), ""
		c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": named, "Labels": map[string]string{"compat-v142": "1"}}})
		anon = c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Labels": map[string]string{"compat-v142": "1"}}}).Str("Name")
		r = c.Post("/volumes/prune?filters=%s", `{"label":["compat-v142=1"]}`)
		deleted := fmt.Sprint(r.Get("VolumesDeleted"))
		c.Check(strings.Contains(deleted, anon) && !strings.Contains(deleted, named), "volume prune (1.42): want the anonymous volume only, got %s", deleted)
		c.Post("/volumes/prune?filters=%s", `{"label":["compat-v142=1"],"all":["true"]}`)
		c.Check(c.Get("/volumes/%s", named).Status == 404, "volume prune all=true (1.42) left the named volume")
	}})

	// API 1.44 and 1.45: VirtualSize, Container and ContainerConfig gone;
	// several networks at create.
	register(&scenario{name: "versions/1.45-images-and-networks", berthOnly: "API 1.44 and 1.45", run: func(c *C, e *env) {
		c.Version("1.45")
		r := c.Get("/images/%s/json", e.rich)
		for _, k := range []string{"VirtualSize", "Container", "ContainerConfig"} {
			c.Check(r.Get(k) == nil, "image inspect (1.45) has %s", k)
		}
		for _, k := range []string{"Parent", "Comment", "DockerVersion", "Author"} {
			_, ok := r.JSON.(map[string]any)[k]
			c.Check(ok, "image inspect (1.45) lacks %s (sent until 1.52)", k)
		}
		list := c.Get("/images/json")
		c.Check(!strings.Contains(string(list.Body), "VirtualSize"), "image list (1.45) has VirtualSize")
		net := c.Name("n2")
		c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": net}})
		r = c.Do(Req{Method: "POST", Path: "/containers/create?name=%s", Args: []any{c.Name("two")}, Body: map[string]any{"Image": e.busybox,
			"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{"bridge": map[string]any{}, net: map[string]any{}}}}})
		c.Check(r.Status == 201, "create on two networks (1.44+): %d %s", r.Status, r.Body)
		c.Remove(r.Str("Id"))
		c.Version("1.43")
		r = c.Do(Req{Method: "POST", Path: "/containers/create?name=%s", Args: []any{c.Name("two43")}, Body: map[string]any{"Image": e.busybox,
			"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{"bridge": map[string]any{}, net: map[string]any{}}}}})
		c.Check(r.Status == 400 && strings.Contains(string(r.Body), "multiple network endpoints"), "create on two networks (1.43): want 400, got %d %s", r.Status, r.Body)
		c.Delete("/networks/%s", net)
	}})

	// API 1.52: the legacy fields are gone.
	register(&scenario{name: "versions/1.52-legacy-fields-gone", berthOnly: "API 1.52", run: func(c *C, e *env) {
		c.Version("1.52")
		id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
		c.Start(id)
		r := c.Inspect(id)
		for _, k := range []string{"NetworkSettings.IPAddress", "NetworkSettings.Gateway", "NetworkSettings.MacAddress", "Config.MacAddress"} {
			c.Check(r.Get(k) == nil, "container inspect (1.52) has %s", k)
		}
		c.Check(r.Get("NetworkSettings.Networks.bridge.IPAddress") != nil, "container inspect (1.52) lacks the bridge's address")
		since := Since()
		c.Post("/containers/%s/kill", id)
		c.Wait(id)
		time.Sleep(300 * time.Millisecond)
		ev := c.Do(Req{Method: "GET", Path: "/events?since=%s&until=%s&filters=%s", Args: []any{since, Since(), `{"container":["` + id + `"]}`}})
		c.Check(mediaType(ev.Header) == "application/x-ndjson", "events (1.52) content type %q", mediaType(ev.Header))
		c.Check(len(ev.Msgs) > 0 && !strings.Contains(string(ev.Body), `"status"`), "events (1.52) still carry status/id/from: %s", ev.Body)
		c.Remove(id)
		img := c.Get("/images/%s/json", e.busybox)
		_, hasParent := img.JSON.(map[string]any)["Parent"]
		c.Check(!hasParent, "image inspect (1.52) has an empty Parent")
		df := c.Get("/system/df")
		c.Check(df.Get("ImageUsage") != nil, "df (1.52) lacks ImageUsage")
		r = c.Do(Req{Method: "POST", Path: "/containers/create", Body: map[string]any{"Image": e.busybox, "MacAddress": "02:42:ac:11:00:99"}})
		c.Check(r.Status == 400, "create with the container-wide MacAddress (1.52): want 400, got %d", r.Status)
	}})

	// The range of versions: 1.24 is the oldest a current dockerd accepts.
	register(&scenario{name: "versions/range", berthOnly: "version negotiation", run: func(c *C, e *env) {
		for v, want := range map[string]int{"1.23": 400, "1.24": 200, "1.41": 200, "1.52": 200, "1.53": 400} {
			c.Version(v)
			r := c.Get("/version")
			c.Check(r.Status == want, "/v%s/version: %d, want %d", v, r.Status, want)
		}
		c.Version("")
		r := c.Get("/version")
		var v struct{ ApiVersion, MinAPIVersion string }
		json.Unmarshal(r.Body, &v)
		c.Check(v.MinAPIVersion == "1.24" && v.ApiVersion == "1.52", "version: %+v", v)
	}})

	// Requests dockerd would act on: Berth refuses them by name.
	register(&scenario{name: "unsupported/swarm-and-plugin-install", berthOnly: "dockerd would create a swarm or fetch a plugin", run: func(c *C, e *env) {
		for _, q := range []Req{{Method: "POST", Path: "/swarm/init", Body: map[string]any{}}, {Method: "POST", Path: "/swarm/join", Body: map[string]any{}}} {
			r := c.Do(q)
			c.Check(r.Status == 503 && strings.Contains(r.Str("message"), "swarm mode is not supported"), "%s: %d %s", q.Path, r.Status, r.Body)
		}
		for _, q := range []Req{{Method: "POST", Path: "/plugins/pull?remote=x"}, {Method: "GET", Path: "/plugins/privileges?remote=x"}, {Method: "POST", Path: "/plugins/create?name=x"}} {
			r := c.Do(q)
			c.Check(r.Status == 501 && strings.Contains(r.Str("message"), "plugins are not supported"), "%s: %d %s", q.Path, r.Status, r.Body)
		}
	}})
}
