package compat_test

import (
	"fmt"
	"strings"
	"time"
)

// The container the stream scenarios attach to: it prints a line on each
// stream, then waits for a line on stdin, then prints one more on each.
const twoPhase = `echo out1; echo err1 >&2; read x; echo "out2 $x"; echo err2 >&2`

func streamContainer(c *C, e *env, name string, tty bool) string {
	return c.Create(e, name, map[string]any{"Cmd": sh(twoPhase), "Tty": tty, "OpenStdin": true,
		"AttachStdin": true, "AttachStdout": true, "AttachStderr": true})
}

// waitLogged polls the logs (unrecorded) until the first phase is out.
func waitLogged(c *C, id string) {
	c.Quiet(func() {
		for i := 0; i < 100; i++ {
			r := c.Get("/containers/%s/logs?stdout=1&stderr=1", id)
			if strings.Contains(string(r.Body), "err1") {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func init() {
	// attach: every combination of stream, logs, stdout, stderr and tty, on
	// a running container that has printed its first phase.
	for _, tty := range []bool{false, true} {
		for _, stream := range []bool{false, true} {
			for _, logs := range []bool{false, true} {
				for _, stdout := range []bool{false, true} {
					for _, stderr := range []bool{false, true} {
						tty, stream, logs, stdout, stderr := tty, stream, logs, stdout, stderr
						q := fmt.Sprintf("stream=%s&logs=%s&stdout=%s&stderr=%s", bit(stream), bit(logs), bit(stdout), bit(stderr))
						var intentional map[string]string
						if stream && !stdout && !stderr {
							intentional = map[string]string{`POST /containers/\{\}/attach`: "an attach to stdin alone ends when the container exits; dockerd holds it open until the client closes its input"}
						}
						register(&scenario{name: fmt.Sprintf("attach/tty=%s&%s", bit(tty), q), intentional: intentional, run: func(c *C, e *env) {
							id := streamContainer(c, e, "a", tty)
							c.Start(id)
							waitLogged(c, id)
							params, stdin := q, ""
							if stream {
								params, stdin = params+"&stdin=1", "go\n"
							}
							s := c.Open(Req{Method: "POST", Path: "/containers/%s/attach?" + params, Args: []any{id}, Stdin: stdin, Timeout: 10 * time.Second})
							s.Finish()
							if !stream {
								// Let the container finish through a second attach.
								c.Quiet(func() {
									c.Open(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdin=1", Args: []any{id}, Stdin: "go\n", Timeout: 10 * time.Second}).Finish()
								})
							}
							c.Value("exit code", c.Wait(id))
							c.Remove(id)
						}})
					}
				}
			}
		}
	}

	// logs: the options on a finished container, with and without a TTY.
	for _, tty := range []bool{false, true} {
		tty := tty
		register(&scenario{name: "logs/tty=" + bit(tty), intentional: map[string]string{
			`tail=x`: "a tail that is neither a number nor \"all\" is refused (400, naming it); dockerd reads it as all",
		}, run: func(c *C, e *env) {
			id, _ := c.Run(e, "a", map[string]any{"Cmd": sh("echo out1; echo err1 >&2; echo out2; printf 'no newline'"), "Tty": tty})
			for _, q := range []string{"stdout=1", "stderr=1", "stdout=1&stderr=1", "stdout=1&stderr=1&tail=1", "stdout=1&stderr=1&tail=0",
				"stdout=1&stderr=1&tail=all", "stdout=1&stderr=1&follow=1", "stdout=1&since=4000000000", "stdout=1&until=1", ""} {
				c.Get("/containers/%s/logs?"+q, id)
			}
			var r *Resp
			c.Quiet(func() { r = c.Get("/containers/%s/logs?stdout=1&stderr=1&timestamps=1", id) })
			c.Value("timestamped logs", fmt.Sprint(r.Status, " ", strings.Count(string(r.Body), "Z ")))
			c.Get("/containers/%s/logs?stdout=1&tail=x", id)
			c.Remove(id)
		}})
	}
	register(&scenario{name: "logs/follow-running", run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("echo one; sleep 1; echo two")})
		c.Start(id)
		p := c.Do2(Req{Method: "GET", Path: "/containers/%s/logs?stdout=1&follow=1", Args: []any{id}, Timeout: 15 * time.Second})
		p.Finish()
		c.Remove(id)
	}})
	register(&scenario{name: "attach/before-start", run: func(c *C, e *env) {
		// docker run: attach, then start; the stream ends with the exit.
		for _, tty := range []bool{false, true} {
			id := c.Create(e, fmt.Sprint("a", tty), map[string]any{"Cmd": sh("echo out; echo err >&2; exit 3"), "Tty": tty, "AttachStdout": true, "AttachStderr": true})
			s := c.Open(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdout=1&stderr=1", Args: []any{id}})
			c.Start(id)
			s.Finish()
			c.Value("exit", c.Wait(id))
			c.Remove(id)
		}
	}})
	register(&scenario{name: "attach/stdin-once", run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": []string{"cat"}, "OpenStdin": true, "StdinOnce": true, "AttachStdin": true, "AttachStdout": true})
		s := c.Open(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdin=1&stdout=1", Args: []any{id}})
		c.Start(id)
		s.conn.Write([]byte("piped\n"))
		s.CloseStdin()
		s.Finish()
		c.Value("exit", c.Wait(id))
		c.Remove(id)
	}})
	register(&scenario{name: "attach/no-upgrade-header", run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("echo out; echo err >&2")})
		s := c.OpenPlain(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdout=1&stderr=1", Args: []any{id}})
		c.Start(id)
		s.Finish()
		c.Wait(id)
		c.Remove(id)
	}})
	register(&scenario{name: "attach/stopped", run: func(c *C, e *env) {
		id, _ := c.Run(e, "a", map[string]any{"Cmd": sh("echo out; echo err >&2")})
		c.Open(Req{Method: "POST", Path: "/containers/%s/attach?stream=1&stdout=1&stderr=1", Args: []any{id}, Timeout: 5 * time.Second}).Finish()
		c.Open(Req{Method: "POST", Path: "/containers/%s/attach?logs=1&stdout=1&stderr=1", Args: []any{id}, Timeout: 5 * time.Second}).Finish()
		c.Remove(id)
	}})

	// exec: a TTY or not at create, at start, detached, with stdin.
	for _, ctty := range []bool{false, true} {
		for _, stty := range []bool{false, true} {
			ctty, stty := ctty, stty
			register(&scenario{name: fmt.Sprintf("exec/create-tty=%s&start-tty=%s", bit(ctty), bit(stty)), run: func(c *C, e *env) {
				id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
				c.Start(id)
				x := c.Exec(id, map[string]any{"Cmd": sh("echo out; echo err >&2; exit 5"), "Tty": ctty, "AttachStdout": true, "AttachStderr": true})
				c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{"Detach": false, "Tty": stty}}).Finish()
				r := c.Get("/exec/%s/json", x)
				c.Value("exit code", r.Get("ExitCode"))
				c.Value("running", r.Get("Running"))
				c.Remove(id)
			}})
		}
	}
	register(&scenario{name: "exec/detach", run: func(c *C, e *env) {
		since := Since()
		id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
		c.Start(id)
		x := c.Exec(id, map[string]any{"Cmd": sh("echo detached > /tmp/f; sleep 1")})
		c.Do(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{"Detach": true}})
		c.Get("/exec/%s/json", x)
		time.Sleep(1500 * time.Millisecond)
		r := c.Get("/exec/%s/json", x)
		c.Value("exit code", r.Get("ExitCode"))
		c.Do(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{"Detach": true}}) // again: 409
		y := c.Exec(id, map[string]any{"Cmd": []string{"cat", "/tmp/f"}, "AttachStdout": true})
		c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{y}, Body: map[string]any{}}).Finish()
		c.Get("/containers/%s/json", id)
		c.Remove(id)
		c.Events(since, map[string][]string{"container": {c.Name("a")}})
	}})
	register(&scenario{name: "exec/stdin-env-user-workdir", run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
		c.Start(id)
		x := c.Exec(id, map[string]any{"Cmd": sh("read l; echo \"got $l $FOO $(id -u) $(pwd)\""), "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
			"Env": []string{"FOO=bar"}, "User": "1000", "WorkingDir": "/tmp"})
		c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{}, Stdin: "line\n"}).Finish()
		c.Remove(id)
	}})
	register(&scenario{name: "exec/errors", intentional: map[string]string{
		`POST /exec/\{\}/resize`: "resizing an exec that has not started is refused at once (409: not running); dockerd waits 10 s for it to start and answers 500",
	}, run: func(c *C, e *env) {
		id := c.Create(e, "a", map[string]any{"Cmd": sh("sleep 30")})
		c.Exec(id, map[string]any{"Cmd": []string{"true"}}) // not running: 409
		c.Start(id)
		c.Exec(id, map[string]any{}) // no command
		c.Exec(id, map[string]any{"Cmd": []string{"true"}, "User": "nosuchuser"})
		x := c.Exec(id, map[string]any{"Cmd": []string{"/no/such/binary"}, "AttachStdout": true, "AttachStderr": true})
		c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{}}).Finish()
		c.Value("missing binary exit", c.Get("/exec/%s/json", x).Get("ExitCode"))
		x = c.Exec(id, map[string]any{"Cmd": []string{"/etc/passwd"}, "AttachStdout": true, "AttachStderr": true})
		c.Open(Req{Method: "POST", Path: "/exec/%s/start", Args: []any{x}, Body: map[string]any{}}).Finish()
		c.Value("not executable exit", c.Get("/exec/%s/json", x).Get("ExitCode"))
		x = c.Exec(id, map[string]any{"Cmd": sh("sleep 5"), "Tty": true})
		c.Post("/exec/%s/resize?h=10&w=10", x) // not started: 409?
		c.Remove(id)
	}})
}
