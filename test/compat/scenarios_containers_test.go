package compat_test

import (
	"fmt"
	"strings"
	"time"
)

func init() {
	register(
		&scenario{name: "containers/lifecycle", run: func(c *C, e *env) {
			since := Since()
			id := c.Create(e, "a", map[string]any{"Cmd": sh("echo hi; sleep 30")})
			c.Inspect(id)
			c.Start(id)
			c.Inspect(id)
			c.Get("/containers/json?filters=%s", `{"name":["`+c.Name("a")+`"]}`)
			c.Get("/containers/json?all=1&size=1&filters=%s", `{"name":["`+c.Name("a")+`"]}`)
			c.Post("/containers/%s/stop?t=1", id)
			c.Inspect(id)
			c.Post("/containers/%s/restart?t=1", id)
			c.Post("/containers/%s/kill", id)
			c.Value("exit code after kill", c.Wait(id))
			c.Remove(id)
			c.Events(since, map[string][]string{"container": {c.Name("a")}})
		}},
		&scenario{name: "containers/state-errors", run: func(c *C, e *env) {
			id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
			c.Post("/containers/%s/stop", id)    // not running: 304
			c.Post("/containers/%s/kill", id)    // not running: 409
			c.Post("/containers/%s/pause", id)   // not running: 409
			c.Post("/containers/%s/unpause", id) // not paused: 409
			c.Get("/containers/%s/top", id)      // not running: 409
			c.Start(id)
			c.Start(id) // already started: 304
			c.Post("/containers/%s/unpause", id)
			c.Post("/containers/%s/pause", id)
			c.Post("/containers/%s/pause", id)
			c.Inspect(id)
			c.Post("/containers/%s/unpause", id)
			c.Delete("/containers/%s", id) // running: 409
			c.Post("/containers/%s/kill?signal=NOPE", id)
			c.Post("/containers/%s/stop?signal=NOPE", id)
			c.Post("/containers/%s/resize?h=10&w=20", id) // no TTY
			c.Post("/containers/%s/rename?name=%s", id, c.Name("b"))
			other := c.Create(e, "c", nil)
			c.Post("/containers/%s/rename?name=%s", other, c.Name("b")) // taken: 409
			c.Post("/containers/%s/rename?name=", other)                // empty
			c.Create(e, "c", nil)                                       // name taken: 409
			c.Remove(id)
			c.Remove(other)
			c.Remove(id) // gone: 404
		}},
		&scenario{name: "containers/not-found", intentional: map[string]string{
			`^POST /exec/\{\}/start$`: "a current dockerd reads an empty body as no options and answers 404 for the missing exec, as Berth does; dockerd 20.10 answered 400 for the missing JSON",
		}, run: func(c *C, e *env) {
			for _, p := range []string{"/containers/%s/json", "/containers/%s/top", "/containers/%s/logs?stdout=1", "/containers/%s/stats?stream=0", "/containers/%s/archive?path=/"} {
				c.Get(p, "nosuchcontainer")
			}
			for _, p := range []string{"/containers/%s/start", "/containers/%s/stop", "/containers/%s/restart", "/containers/%s/kill",
				"/containers/%s/wait", "/containers/%s/pause", "/containers/%s/unpause", "/containers/%s/rename?name=x", "/containers/%s/resize?h=1&w=1"} {
				c.Post(p, "nosuchcontainer")
			}
			c.Delete("/containers/%s", "nosuchcontainer")
			c.Do(Req{Method: "POST", Path: "/containers/%s/exec", Args: []any{"nosuchcontainer"}, Body: map[string]any{"Cmd": []string{"true"}}})
			c.Post("/exec/%s/start", "nosuchexec")
			c.Get("/exec/%s/json", "nosuchexec")
			c.Post("/exec/%s/resize?h=1&w=1", "nosuchexec")
		}},
		&scenario{name: "containers/create-errors", intentional: map[string]string{
			`case=badjson`:   current400,
			`case=nosuchnet`: "the network is looked up at create, so nothing is left behind: Berth answers 404 (network not found) to the create; dockerd creates the container and answers the same 404 to its start",
		}, run: func(c *C, e *env) {
			create := func(name string, body any) {
				r := c.Do(Req{Method: "POST", Path: "/containers/create?case=" + name + "&name=%s", Args: []any{c.Name(name)}, Body: body, Type: "application/json"})
				if id := r.Str("Id"); id != "" {
					c.Quiet(func() { c.Remove(id) })
				}
			}
			create("noimage", map[string]any{})
			create("missingimage", map[string]any{"Image": "nosuch/image:missing"})
			c.Do(Req{Method: "POST", Path: "/containers/create?name=%s", Args: []any{"bad name!"}, Body: map[string]any{"Image": e.busybox}})
			create("badjson", []byte("{not json"))
			create("nosuchnet", map[string]any{"Image": e.busybox, "HostConfig": map[string]any{"NetworkMode": "nosuchnet"}})
			create("badrestart", map[string]any{"Image": e.busybox, "HostConfig": map[string]any{"RestartPolicy": map[string]any{"Name": "sometimes"}}})
			create("rmrestart", map[string]any{"Image": e.busybox, "HostConfig": map[string]any{"AutoRemove": true, "RestartPolicy": map[string]any{"Name": "always"}}})
			create("tinymemory", map[string]any{"Image": e.busybox, "HostConfig": map[string]any{"Memory": 1024}})
			create("nocpus", map[string]any{"Image": e.busybox, "HostConfig": map[string]any{"CpusetCpus": "99"}})
		}},
		&scenario{name: "containers/start-errors", run: func(c *C, e *env) {
			id := c.Create(e, "nocmd", map[string]any{"Cmd": []string{"/no/such/binary"}})
			c.Start(id)
			c.Inspect(id)
			c.Remove(id)
			id = c.Create(e, "notexec", map[string]any{"Cmd": []string{"/etc/passwd"}})
			c.Start(id)
			c.Remove(id)
			id = c.Create(e, "baduser", map[string]any{"Cmd": []string{"true"}, "User": "nosuchuser"})
			c.Start(id)
			c.Remove(id)
			id = c.Create(e, "badworkdir", map[string]any{"Cmd": []string{"pwd"}, "WorkingDir": "/etc/passwd"})
			c.Start(id)
			c.Remove(id)
		}},
		&scenario{name: "containers/wait-conditions", run: func(c *C, e *env) {
			id := c.Create(e, "a", map[string]any{"Cmd": sh("exit 3")})
			c.Do(Req{Method: "POST", Path: "/containers/%s/wait?condition=not-running", Args: []any{id}, Timeout: 10 * time.Second})
			next := c.Do2(Req{Method: "POST", Path: "/containers/%s/wait?condition=next-exit", Args: []any{id}, Timeout: 20 * time.Second})
			c.Start(id)
			next.Finish()
			c.Value("exit", c.Wait(id))
			rm := c.Do2(Req{Method: "POST", Path: "/containers/%s/wait?condition=removed", Args: []any{id}, Timeout: 20 * time.Second})
			c.Delete("/containers/%s", id)
			rm.Finish()
			c.Do(Req{Method: "POST", Path: "/containers/%s/wait?condition=bogus", Args: []any{id}})
		}},
		&scenario{name: "containers/exit-codes", run: func(c *C, e *env) {
			// SIGKILL, a stop past its timeout, SIGTERM to a shell that
			// traps nothing (PID 1 ignores it: stop falls back to SIGKILL),
			// and a process killed inside.
			id := c.Create(e, "kill", map[string]any{"Cmd": sh("sleep 30")})
			c.Start(id)
			c.Post("/containers/%s/kill", id)
			c.Value("killed: wait", c.Wait(id))
			c.Value("killed: inspect", c.Inspect(id).Get("State.ExitCode"))
			c.Start(id)
			c.Post("/containers/%s/kill?signal=SIGTERM", id)
			time.Sleep(300 * time.Millisecond)
			c.Value("SIGTERM ignored by PID 1: running", c.Inspect(id).Get("State.Running"))
			c.Post("/containers/%s/stop?t=1", id)
			c.Value("stopped past timeout: wait", c.Wait(id))
			c.Value("stopped past timeout: inspect", c.Inspect(id).Get("State.ExitCode"))
			c.Start(id)
			c.Post("/containers/%s/kill?signal=9", id)
			c.Value("killed by number", c.Wait(id))
			c.Remove(id)
			id = c.Create(e, "term", map[string]any{"Cmd": sh("trap 'exit 7' TERM; sleep 30 & wait")})
			c.Start(id)
			time.Sleep(200 * time.Millisecond)
			c.Post("/containers/%s/stop?t=5", id)
			c.Value("trapped TERM", c.Inspect(id).Get("State.ExitCode"))
			c.Remove(id)
			id, code := c.Run(e, "inner", map[string]any{"Cmd": sh("sleep 30 & kill -9 $!; wait $!")})
			c.Value("inner kill", code)
			c.Remove(id)
			id = c.Create(e, "init", map[string]any{"Cmd": []string{"sleep", "30"}, "HostConfig": map[string]any{"Init": true}})
			c.Start(id)
			c.Post("/containers/%s/stop?t=5", id)
			c.Value("--init stop", c.Inspect(id).Get("State.ExitCode"))
			c.Remove(id)
		}},
		&scenario{name: "containers/list-filters", intentional: map[string]string{`case=badjson`: current400}, run: func(c *C, e *env) {
			a := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30"), "Labels": map[string]string{"compat": "list"}})
			b := c.Create(e, "b", map[string]any{"Cmd": sh("exit 2"), "Labels": map[string]string{"compat": "list"}})
			c.Start(a)
			c.Start(b)
			c.Wait(b)
			q := func(f string) {
				r := c.Get("/containers/json?all=1&filters=%s", f)
				var names []string
				for _, x := range r.Msgs {
					for _, it := range asList(x) {
						names = append(names, str(walk(it, "Names.0")))
					}
				}
				c.Value("names for "+f, sortStrings(names))
			}
			q(`{"label":["compat=list"]}`)
			q(`{"label":["compat=list"],"status":["running"]}`)
			q(`{"label":["compat=list"],"status":["exited"]}`)
			q(`{"label":["compat=list"],"exited":["2"]}`)
			q(`{"label":["compat=list"],"name":["` + c.Name("a") + `"]}`)
			q(`{"label":["compat=list"],"ancestor":["` + e.busybox + `"]}`)
			q(`{"label":["compat=list"],"before":["` + c.Name("b") + `"]}`)
			q(`{"label":["compat=list"],"since":["` + c.Name("a") + `"]}`)
			c.Get("/containers/json?filters=%s", `{"bogus":["x"]}`)
			c.Get("/containers/json?case=badjson&filters=%s", `not json`)
			c.Get("/containers/json?limit=1&filters=%s", `{"label":["compat=list"]}`)
			c.Remove(a)
			c.Remove(b)
		}},
		&scenario{name: "containers/top-resize-rename", run: func(c *C, e *env) {
			id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30"), "Tty": true})
			c.Start(id)
			r := c.Get("/containers/%s/top", id)
			c.Value("top titles", r.Get("Titles"))
			c.Get("/containers/%s/top?ps_args=aux", id)
			c.Post("/containers/%s/resize?h=30&w=100", id)
			c.Post("/containers/%s/resize?h=x&w=100", id)
			c.Post("/containers/%s/rename?name=%s", id, c.Name("renamed"))
			c.Value("renamed", c.Inspect(id).Get("Name"))
			c.Remove(id)
		}},
		&scenario{name: "containers/stats", run: func(c *C, e *env) {
			id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
			c.Start(id)
			c.Get("/containers/%s/stats?stream=0&one-shot=1", id)
			c.Get("/containers/%s/stats?stream=0", id)
			c.Post("/containers/%s/kill", id)
			c.Wait(id)
			c.Get("/containers/%s/stats?stream=0", id)
			c.Remove(id)
		}},
		&scenario{name: "containers/prune", run: func(c *C, e *env) {
			a := c.Create(e, "a", map[string]any{"Cmd": sh("true"), "Labels": map[string]string{"compat-prune": c.Name("")}})
			c.Start(a)
			c.Wait(a)
			c.Post("/containers/prune?filters=%s", `{"label":["compat-prune=`+c.Name("")+`"]}`)
			c.Post("/containers/prune?filters=%s", `{"bogus":["x"]}`)
			c.Inspect(a)
		}},
	)
}

func init() {
	// Endpoints another issue is adding (docker update, export, diff and
	// attach over a websocket): reported, not failed, until they land.
	register(&scenario{name: "containers/update", intentional: map[string]string{
		`case=memoryalone|value: memory after the first update`: "a memory limit alone, on a container that had none, is accepted (swap then as much again, as at create); dockerd refuses it unless the swap limit comes too",
	}, run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
		c.Start(id)
		c.Do(Req{Method: "POST", Path: "/containers/%s/update?case=memoryalone", Args: []any{id}, Body: map[string]any{"Memory": 64 << 20}})
		c.Value("memory after the first update", c.Inspect(id).Get("HostConfig.Memory"))
		c.Do(Req{Method: "POST", Path: "/containers/%s/update", Args: []any{id}, Body: map[string]any{"Memory": 96 << 20, "MemorySwap": 192 << 20,
			"RestartPolicy": map[string]any{"Name": "on-failure", "MaximumRetryCount": 2}}})
		r := c.Inspect(id)
		c.Value("after the update", fmt.Sprint(r.Get("HostConfig.Memory"), " ", r.Get("HostConfig.MemorySwap"), " ", r.Get("HostConfig.RestartPolicy.Name")))
		c.Do(Req{Method: "POST", Path: "/containers/%s/update", Args: []any{id}, Body: map[string]any{"RestartPolicy": map[string]any{"Name": "sometimes"}}})
		c.Remove(id)
	}})
	register(&scenario{name: "containers/export-and-changes", run: func(c *C, e *env) {
		id, _ := c.Run(e, "a", map[string]any{"Cmd": sh("echo x > /new; rm /etc/group")})
		c.Get("/containers/%s/changes", id)
		r := c.Get("/containers/%s/export", id)
		c.Value("exported /new", strings.Contains(tarNames(r.Body), " new 2"))
		c.Remove(id)
	}})
	register(&scenario{name: "containers/attach-websocket", run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("echo hi")})
		c.Get("/containers/%s/attach/ws?stream=0&logs=1&stdout=1", id)
		c.Remove(id)
	}})
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
