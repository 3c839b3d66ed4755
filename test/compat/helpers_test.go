package compat_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The helpers below are the requests scenarios make over and over; each
// is recorded like any other.

// Create creates a container named c.Name(name) from body (Image defaults
// to the busybox image) and returns its ID.
func (c *C) Create(e *env, name string, body map[string]any) string {
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["Image"]; !ok {
		body["Image"] = e.busybox
	}
	r := c.Do(Req{Method: "POST", Path: "/containers/create?name=%s", Args: []any{c.Name(name)}, Body: body})
	if id := r.Str("Id"); id != "" {
		c.mu.Lock()
		if c.vars == nil {
			c.vars = map[string]string{}
		}
		c.vars[id] = name
		c.mu.Unlock()
	}
	return r.Str("Id")
}

// Post sends a request with no body and records it.
func (c *C) Post(path string, args ...any) *Resp {
	return c.Do(Req{Method: "POST", Path: path, Args: args})
}

// Get sends a GET and records it.
func (c *C) Get(path string, args ...any) *Resp {
	return c.Do(Req{Method: "GET", Path: path, Args: args})
}

// Delete sends a DELETE and records it.
func (c *C) Delete(path string, args ...any) *Resp {
	return c.Do(Req{Method: "DELETE", Path: path, Args: args})
}

// Start starts a container.
func (c *C) Start(id string) *Resp { return c.Post("/containers/%s/start", id) }

// Wait waits for a container to exit and records its status code.
func (c *C) Wait(id string) int {
	r := c.Do(Req{Method: "POST", Path: "/containers/%s/wait", Args: []any{id}, Timeout: 30 * time.Second})
	n, _ := r.Get("StatusCode").(float64)
	return int(n)
}

// Inspect inspects a container.
func (c *C) Inspect(id string) *Resp { return c.Get("/containers/%s/json", id) }

// Remove force-removes a container (with its anonymous volumes); nothing
// is sent for a container that was never made.
func (c *C) Remove(id string) *Resp {
	if id == "" {
		return &Resp{}
	}
	return c.Delete("/containers/%s?force=1&v=1", id)
}

// Quiet runs f with nothing recorded: clean-up that is not under test.
func (c *C) Quiet(f func()) {
	c.mu.Lock()
	n := len(c.obs)
	c.mu.Unlock()
	f()
	c.mu.Lock()
	c.obs = c.obs[:n]
	c.mu.Unlock()
}

// Run creates and starts a container, waits for it and returns its ID and
// exit code.
func (c *C) Run(e *env, name string, body map[string]any) (string, int) {
	id := c.Create(e, name, body)
	c.Start(id)
	return id, c.Wait(id)
}

// Since is a point in time to read events from.
func Since() string {
	return fmt.Sprintf("%.9f", float64(time.Now().UnixNano())/1e9)
}

// Events reads the events since then for the filters and records their
// sequence ("container start", "network connect" …) as a value.
func (c *C) Events(since string, filters map[string][]string) {
	time.Sleep(300 * time.Millisecond) // let asynchronous events land
	until := fmt.Sprintf("%.9f", float64(time.Now().UnixNano())/1e9)
	f, _ := json.Marshal(filters)
	r := c.Do(Req{Method: "GET", Path: "/events?since=%s&until=%s&filters=%s", Args: []any{since, until, string(f)}, Timeout: 10 * time.Second})
	var seq []string
	for _, m := range r.Msgs {
		mm, _ := m.(map[string]any)
		ev := fmt.Sprint(mm["Type"], " ", mm["Action"])
		// Name the scenario's containers a network event is about.
		if id := str(walk(mm, "Actor.Attributes.container")); id != "" {
			c.mu.Lock()
			if name, ok := c.vars[id]; ok {
				ev += " (" + name + ")"
			}
			c.mu.Unlock()
		}
		seq = append(seq, ev)
	}
	c.Value("event sequence", strings.Join(seq, ", "))
}

// Exec creates an exec and returns its ID.
func (c *C) Exec(id string, body map[string]any) string {
	r := c.Do(Req{Method: "POST", Path: "/containers/%s/exec", Args: []any{id}, Body: body})
	return r.Str("Id")
}

// sh is a shell command line as Cmd.
func sh(script string) []string { return []string{"sh", "-c", script} }

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
