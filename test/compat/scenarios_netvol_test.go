package compat_test

func init() {
	register(
		&scenario{name: "networks/lifecycle", intentional: map[string]string{
			`value: event sequence`: "a disconnect that fails (the container is not connected) reports no event; dockerd 20.10 reported a disconnect for it",
		}, run: func(c *C, e *env) {
			since := Since()
			name := c.Name("net")
			r := c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": name, "Labels": map[string]string{"compat": "1"}, "Options": map[string]string{"com.docker.network.bridge.enable_icc": "true"}}})
			nid := r.Str("Id")
			c.Get("/networks/%s", name)
			c.Get("/networks/%s?verbose=1", nid)
			c.Get("/networks?filters=%s", `{"name":["`+name+`"]}`)
			c.Get("/networks?filters=%s", `{"label":["compat=1"]}`)
			c.Get("/networks?filters=%s", `{"bogus":["x"]}`)
			id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30"), "HostConfig": map[string]any{"NetworkMode": name},
				"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{name: map[string]any{"Aliases": []string{"alias1"}}}}})
			c.Start(id)
			c.Get("/networks/%s", name)
			c.Delete("/networks/%s", name) // in use: 403
			b := c.Create(e, "b", map[string]any{"Cmd": sh("sleep 30")})
			c.Start(b)
			c.Do(Req{Method: "POST", Path: "/networks/%s/connect", Args: []any{name}, Body: map[string]any{"Container": b, "EndpointConfig": map[string]any{"Aliases": []string{"bee"}}}})
			c.Do(Req{Method: "POST", Path: "/networks/%s/connect", Args: []any{name}, Body: map[string]any{"Container": b}}) // again
			x := c.Exec(b, map[string]any{"Cmd": sh("nslookup alias1 >/dev/null 2>&1 && echo resolved || echo not-resolved"), "AttachStdout": true})
			c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{}}).Finish()
			c.Inspect(b)
			c.Do(Req{Method: "POST", Path: "/networks/%s/disconnect", Args: []any{name}, Body: map[string]any{"Container": b}})
			c.Do(Req{Method: "POST", Path: "/networks/%s/disconnect", Args: []any{name}, Body: map[string]any{"Container": b}}) // not connected
			c.Do(Req{Method: "POST", Path: "/networks/%s/connect", Args: []any{"nosuchnet"}, Body: map[string]any{"Container": b}})
			c.Do(Req{Method: "POST", Path: "/networks/%s/connect", Args: []any{name}, Body: map[string]any{"Container": "nosuchcontainer"}})
			c.Remove(id)
			c.Remove(b)
			c.Delete("/networks/%s", name)
			c.Delete("/networks/%s", name)
			c.Events(since, map[string][]string{"type": {"network"}, "network": {name}})
		}},
		&scenario{name: "networks/duplicate-name", intentional: map[string]string{
			`^POST /networks/create$`: "a network name in use is refused (409), as a current dockerd refuses it at every API version; dockerd 20.10 made a second network of that name unless asked to check (CheckDuplicate)",
		}, run: func(c *C, e *env) {
			name := c.Name("net")
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": name, "CheckDuplicate": true}})
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": name, "CheckDuplicate": true}})
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": name}})
			c.Quiet(func() {
				for _, n := range asList(c.Get("/networks?filters=%s", `{"name":["`+name+`"]}`).JSON) {
					c.Delete("/networks/%s", str(walk(n, "Id")))
				}
			})
		}},
		&scenario{name: "networks/builtin", serial: true, run: func(c *C, e *env) {
			r := c.Get("/networks?filters=%s", `{"type":["builtin"]}`)
			var names []string
			for _, n := range asList(r.JSON) {
				names = append(names, str(walk(n, "Name")))
			}
			c.Value("builtin", sortStrings(names))
			for _, n := range []string{"bridge", "host", "none"} {
				c.Get("/networks/%s", n)
			}
			c.Delete("/networks/%s", "bridge")
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": "host"}})
			c.Get("/networks/%s", "nosuchnet")
		}},
		&scenario{name: "networks/create-options", intentional: map[string]string{
			`case=(badsubnet|noname)`: current400,
			`case=overlay`:            "overlay networks need swarm mode: 403 with dockerd's words, as a current dockerd answers; dockerd 20.10 answered 500",
		}, run: func(c *C, e *env) {
			// Subnets of their own (outside both engines' pools and each other).
			subnet := map[string]string{"berth": "10.248.77.0/24", "dockerd": "10.249.77.0/24"}[c.Engine()]
			gw := map[string]string{"berth": "10.248.77.1", "dockerd": "10.249.77.1"}[c.Engine()]
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": c.Name("ipam"), "Internal": true, "Attachable": true,
				"IPAM": map[string]any{"Driver": "default", "Config": []map[string]string{{"Subnet": subnet, "Gateway": gw}}}}})
			c.Get("/networks/%s", c.Name("ipam"))
			c.Do(Req{Method: "POST", Path: "/networks/create?case=badsubnet", Body: map[string]any{"Name": c.Name("bad"), "IPAM": map[string]any{"Config": []map[string]string{{"Subnet": "not-a-subnet"}}}}})
			c.Do(Req{Method: "POST", Path: "/networks/create?case=nodriver", Body: map[string]any{"Name": c.Name("drv"), "Driver": "nosuchdriver"}})
			c.Do(Req{Method: "POST", Path: "/networks/create?case=overlay", Body: map[string]any{"Name": c.Name("overlay"), "Driver": "overlay"}})
			c.Do(Req{Method: "POST", Path: "/networks/create?case=noname", Body: map[string]any{}})
			c.Delete("/networks/%s", c.Name("ipam"))
		}},
		&scenario{name: "networks/prune", run: func(c *C, e *env) {
			c.Do(Req{Method: "POST", Path: "/networks/create", Body: map[string]any{"Name": c.Name("p"), "Labels": map[string]string{"compat-prune": "1"}}})
			c.Post("/networks/prune?filters=%s", `{"label":["compat-prune=1"]}`)
			c.Post("/networks/prune?filters=%s", `{"bogus":["x"]}`)
		}},
		&scenario{name: "volumes/lifecycle", run: func(c *C, e *env) {
			since := Since()
			name := c.Name("v")
			c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": name, "Labels": map[string]string{"compat": "1"}}})
			c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": name}}) // exists: same answer
			c.Get("/volumes/%s", name)
			c.Get("/volumes?filters=%s", `{"name":["`+name+`"]}`)
			c.Get("/volumes?filters=%s", `{"label":["compat=1"]}`)
			c.Get("/volumes?filters=%s", `{"dangling":["true"],"label":["compat=1"]}`)
			c.Get("/volumes?filters=%s", `{"bogus":["x"]}`)
			id := c.Create(e, "a", map[string]any{"Cmd": sh("echo hi > /v/f"), "HostConfig": map[string]any{"Binds": []string{name + ":/v"}}})
			c.Delete("/volumes/%s", name) // in use: 409
			c.Remove(id)
			c.Delete("/volumes/%s", name)
			c.Delete("/volumes/%s", name)
			c.Get("/volumes/%s", name)
			c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": "bad/name"}})
			c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Name": c.Name("drv"), "Driver": "nosuchdriver"}})
			c.Do(Req{Method: "POST", Path: "/volumes/create?case=opts", Body: map[string]any{"Name": c.Name("tmpfs"), "DriverOpts": map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}})
			c.Get("/volumes/%s?case=opts", c.Name("tmpfs"))
			// Mounted while a container uses it, as dockerd's local driver does.
			id, _ = c.Run(e, "t", map[string]any{"Cmd": sh("echo x > /t/f; df -k /t | tail -1 | awk '{print $2}'; grep -c ' /t tmpfs ' /proc/mounts"),
				"HostConfig": map[string]any{"Binds": []string{c.Name("tmpfs") + ":/t"}}})
			c.Get("/containers/%s/logs?stdout=1&stderr=1", id)
			c.Remove(id)
			c.Do(Req{Method: "POST", Path: "/volumes/create?case=badopt", Body: map[string]any{"Name": c.Name("badopt"), "DriverOpts": map[string]string{"nosuch": "x"}}})
			c.Delete("/volumes/%s?case=opts", c.Name("tmpfs"))
			c.Events(since, map[string][]string{"type": {"volume"}, "volume": {name}})
		}},
		&scenario{name: "volumes/anonymous-and-prune", run: func(c *C, e *env) {
			r := c.Do(Req{Method: "POST", Path: "/volumes/create", Body: map[string]any{"Labels": map[string]string{"compat-prune": "1"}}})
			c.Value("generated name length", len(r.Str("Name")))
			c.Post("/volumes/prune?filters=%s", `{"label":["compat-prune=1"]}`)
			c.Post("/volumes/prune?filters=%s", `{"bogus":["x"]}`)
		}},
	)
}
