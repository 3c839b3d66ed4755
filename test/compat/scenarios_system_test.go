package compat_test

import (
	"time"
)

func init() {
	register(
		&scenario{name: "system/ping", run: func(c *C, e *env) {
			c.Get("/_ping")
			c.Do(Req{Method: "HEAD", Path: "/_ping"})
			c.Version("")
			c.Get("/_ping")
		}},
		&scenario{name: "system/version", run: func(c *C, e *env) {
			c.Get("/version")
			c.Version("")
			c.Get("/version")
		}},
		&scenario{name: "system/info", run: func(c *C, e *env) {
			c.Get("/info")
		}},
		&scenario{name: "system/df", serial: true, run: func(c *C, e *env) {
			v := c.Name("v")
			c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": v}})
			id := c.Create(e, "a", map[string]any{"Cmd": sh("echo x > /f"), "HostConfig": map[string]any{"Binds": []string{v + ":/v"}}})
			c.Start(id)
			c.Wait(id)
			r := c.Get("/system/df")
			var names []string
			for _, x := range asList(r.Get("Containers")) {
				names = append(names, str(walk(x, "Names.0")))
			}
			c.Value("containers", sortStrings(names)) // what other scenarios left behind shows here
			c.Remove(id)
			c.Delete("/volumes/%s", v)
		}},
		&scenario{name: "system/events", intentional: map[string]string{
			`case=bogus`:   "an unknown filter is refused (400, naming it), as in every other list; dockerd ignores it in /events",
			`case=garbage`: current400,
		}, run: func(c *C, e *env) {
			since := Since()
			id, _ := c.Run(e, "a", map[string]any{"Cmd": sh("exit 0"), "Labels": map[string]string{"compat-ev": "1"}})
			c.Remove(id)
			c.Events(since, map[string][]string{"container": {c.Name("a")}})
			c.Events(since, map[string][]string{"label": {"compat-ev=1"}, "event": {"start", "die"}})
			c.Events(since, map[string][]string{"type": {"container"}, "container": {c.Name("a")}, "event": {"destroy"}})
			c.Get("/events?case=bogus&since=%s&until=%s&filters=%s", since, since, `{"bogus":["x"]}`)
			c.Get("/events?case=garbage&since=%s&until=%s", "garbage", since)
			// A stream that is still open: its first bytes are the headers.
			c.Do(Req{Method: "GET", Path: "/events?filters=%s", Args: []any{`{"container":["` + c.Name("none") + `"]}`}, Timeout: 500 * time.Millisecond})
		}},
		&scenario{name: "system/routing", run: func(c *C, e *env) {
			c.Get("/no/such/path")
			c.Do(Req{Method: "PUT", Path: "/containers/json"})
			c.Version("1.99")
			c.Get("/version")
			c.Version("1.24")
			c.Get("/version")
			c.Version("")
			c.Get("/v1.41/info/") // a trailing slash
		}},
		&scenario{name: "system/old-versions", intentional: map[string]string{
			`GET /version`: "API versions below 1.24 are refused, as a current dockerd refuses them; dockerd 20.10 still accepted 1.12-1.23",
		}, run: func(c *C, e *env) {
			c.Version("1.12")
			c.Get("/version")
		}},
	)
	// The unsupported families: dockerd without swarm mode answers 503.
	swarm := []Req{
		{Method: "GET", Path: "/swarm"}, {Method: "POST", Path: "/swarm/leave"}, {Method: "POST", Path: "/swarm/update?version=1", Body: map[string]any{}},
		{Method: "GET", Path: "/swarm/unlockkey"}, {Method: "POST", Path: "/swarm/unlock", Body: map[string]any{"UnlockKey": "x"}},
		{Method: "GET", Path: "/nodes"}, {Method: "GET", Path: "/nodes/%s", Args: []any{"x"}}, {Method: "DELETE", Path: "/nodes/%s", Args: []any{"x"}},
		{Method: "POST", Path: "/nodes/%s/update?version=1", Args: []any{"x"}, Body: map[string]any{}},
		{Method: "GET", Path: "/services"}, {Method: "POST", Path: "/services/create", Body: map[string]any{"Name": "x"}},
		{Method: "GET", Path: "/services/%s", Args: []any{"x"}}, {Method: "DELETE", Path: "/services/%s", Args: []any{"x"}},
		{Method: "POST", Path: "/services/%s/update?version=1", Args: []any{"x"}, Body: map[string]any{}},
		{Method: "GET", Path: "/services/%s/logs?stdout=1", Args: []any{"x"}},
		{Method: "GET", Path: "/tasks"}, {Method: "GET", Path: "/tasks/%s", Args: []any{"x"}}, {Method: "GET", Path: "/tasks/%s/logs?stdout=1", Args: []any{"x"}},
		{Method: "GET", Path: "/secrets"}, {Method: "POST", Path: "/secrets/create", Body: map[string]any{"Name": "x", "Data": "eA=="}},
		{Method: "GET", Path: "/secrets/%s", Args: []any{"x"}}, {Method: "DELETE", Path: "/secrets/%s", Args: []any{"x"}},
		{Method: "POST", Path: "/secrets/%s/update?version=1", Args: []any{"x"}, Body: map[string]any{}},
		{Method: "GET", Path: "/configs"}, {Method: "POST", Path: "/configs/create", Body: map[string]any{"Name": "x", "Data": "eA=="}},
		{Method: "GET", Path: "/configs/%s", Args: []any{"x"}}, {Method: "DELETE", Path: "/configs/%s", Args: []any{"x"}},
		{Method: "POST", Path: "/configs/%s/update?version=1", Args: []any{"x"}, Body: map[string]any{}},
		{Method: "PUT", Path: "/volumes/%s?version=1", Args: []any{"x"}, Body: map[string]any{}},
	}
	register(&scenario{name: "unsupported/swarm", run: func(c *C, e *env) {
		for _, q := range swarm {
			r := c.Do(q)
			c.Value("message", r.Str("message"))
		}
	}})
	register(&scenario{name: "unsupported/plugins", run: func(c *C, e *env) {
		for _, q := range []Req{
			{Method: "GET", Path: "/plugins"}, {Method: "GET", Path: "/plugins?filters=%s", Args: []any{`{"capability":["volumedriver"]}`}},
			{Method: "GET", Path: "/plugins/%s/json", Args: []any{"nosuch"}}, {Method: "DELETE", Path: "/plugins/%s", Args: []any{"nosuch"}},
			{Method: "POST", Path: "/plugins/%s/enable", Args: []any{"nosuch"}}, {Method: "POST", Path: "/plugins/%s/disable", Args: []any{"nosuch"}},
			{Method: "POST", Path: "/plugins/%s/set", Args: []any{"nosuch"}, Body: []string{}},
			{Method: "POST", Path: "/plugins/%s/push", Args: []any{"nosuch"}},
			{Method: "POST", Path: "/plugins/%s/upgrade?remote=%s", Args: []any{"nosuch", "nosuch"}, Body: []string{}},
		} {
			r := c.Do(q)
			c.Value("message", r.Str("message"))
		}
	}})
}
