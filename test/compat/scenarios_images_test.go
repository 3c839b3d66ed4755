package compat_test

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"time"
)

func init() {
	register(
		&scenario{name: "images/inspect-history", run: func(c *C, e *env) {
			c.Get("/images/%s/json", e.busybox)
			c.Get("/images/%s/json", e.rich)
			c.Get("/images/%s/history", e.busybox)
			c.Get("/images/%s/history", e.rich)
			c.Get("/images/%s/json", "nosuch/image:missing")
			c.Get("/images/%s/history", "nosuch/image:missing")
			c.Get("/images/%s/json", "Bad:Reference!")
			r := c.Get("/images/%s/json", e.busybox)
			id := r.Str("Id")
			c.Get("/images/%s/json", strings.TrimPrefix(id, "sha256:")[:12])
		}},
		&scenario{name: "images/list", serial: true, run: func(c *C, e *env) {
			c.Get("/images/json")
			c.Get("/images/json?all=1")
			c.Get("/images/json?digests=1")
			c.Get("/images/json?filters=%s", `{"reference":["`+e.busybox+`"]}`)
			c.Get("/images/json?filters=%s", `{"dangling":["true"]}`)
			c.Get("/images/json?filters=%s", `{"label":["org.example.kind=rich"]}`)
			c.Get("/images/json?filters=%s", `{"before":["`+e.rich+`"]}`)
			c.Get("/images/json?filters=%s", `{"bogus":["x"]}`)
			c.Get("/images/json?filter=%s", e.busybox)
		}},
		&scenario{name: "images/tag-remove", intentional: map[string]string{
			`tag=Bad!Tag|repo=UPPER|POST /images/\{\}/tag$`: current400,
		}, run: func(c *C, e *env) {
			since := Since()
			repo := e.registry + "/compat/tagged"
			c.Post("/images/%s/tag?repo=%s&tag=t1", e.busybox, repo)
			c.Post("/images/%s/tag?repo=%s", e.busybox, repo) // latest
			c.Post("/images/%s/tag?repo=%s&tag=Bad!Tag", e.busybox, repo)
			c.Post("/images/%s/tag?repo=%s&tag=t1", "nosuch/image:missing", repo)
			c.Post("/images/%s/tag?repo=UPPER&tag=x", e.busybox)
			c.Post("/images/%s/tag", e.busybox)
			c.Get("/images/%s/json", repo+":t1")
			c.Delete("/images/%s", repo+":t1")
			c.Delete("/images/%s", repo+":latest")
			c.Delete("/images/%s", repo+":latest")
			// An image in use by a container.
			c.Post("/images/%s/tag?repo=%s&tag=used", e.busybox, repo)
			id := c.Create(e, "user", map[string]any{"Image": repo + ":used"})
			img := c.Get("/images/%s/json", e.busybox).Str("Id")
			c.Delete("/images/%s", img)          // in use and tagged many times: 409
			c.Delete("/images/%s", repo+":used") // untag only
			c.Delete("/images/%s?force=1", "nosuch/image:x")
			c.Remove(id)
			c.Delete("/images/%s?noprune=1", "nosuch/image:x")
			c.Events(since, map[string][]string{"type": {"image"}, "image": {repo + ":t1", repo + ":latest", repo + ":used", repo}})
		}},
		&scenario{name: "images/pull", intentional: map[string]string{
			`^POST /images/create$`: "a pull without fromImage is refused (400, naming it); dockerd takes it for an import from an empty URL and answers 500",
		}, run: func(c *C, e *env) {
			since := Since()
			c.Post("/images/create?fromImage=%s", e.busybox)
			c.Post("/images/create?fromImage=%s&tag=latest", e.registry+"/compat/busybox")
			c.Post("/images/create?fromImage=%s", e.registry+"/compat/nosuch:tag")
			c.Post("/images/create?fromImage=%s", "Bad:Ref!")
			c.Post("/images/create")
			c.Events(since, map[string][]string{"type": {"image"}, "image": {e.busybox, e.registry + "/compat/busybox"}})
		}},
		&scenario{name: "images/push", intentional: map[string]string{
			`case=missing`: "pushing a tag that does not exist answers 404 before any output, as a current dockerd does; dockerd 20.10 started the stream (200) and sent the error in it",
		}, run: func(c *C, e *env) {
			repo := e.registry + "/compat/pushed-" + c.Engine()
			c.Post("/images/%s/tag?repo=%s&tag=v1", e.busybox, repo)
			c.Do(Req{Method: "POST", Path: "/images/%s/push", Args: []any{repo + ":v1"}, Header: map[string]string{"X-Registry-Auth": "e30="}})
			c.Do(Req{Method: "POST", Path: "/images/%s/push?case=missing", Args: []any{"nosuch/image:x"}, Header: map[string]string{"X-Registry-Auth": "e30="}})
			c.Delete("/images/%s", repo+":v1")
		}},
		&scenario{name: "images/save-load", intentional: map[string]string{
			`case=notatar`: "an archive that cannot be read answers 400 before any output; dockerd 20.10 started the stream (200) and sent the error in it",
		}, run: func(c *C, e *env) {
			r := c.Get("/images/%s/get", e.busybox)
			c.Value("archive", saveSummary(r.Body))
			r = c.Get("/images/get?names=%s&names=%s", e.busybox, e.rich)
			c.Value("archive (two)", saveSummary(r.Body))
			c.Get("/images/get?names=%s", "nosuch/image:x")
			repo := e.registry + "/compat/loaded"
			c.Post("/images/%s/tag?repo=%s&tag=v1", e.busybox, repo)
			saved := c.Get("/images/%s/get", repo+":v1").Body
			c.Delete("/images/%s", repo+":v1")
			c.Do(Req{Method: "POST", Path: "/images/load", Body: saved, Type: "application/x-tar"})
			c.Do(Req{Method: "POST", Path: "/images/load?quiet=1", Body: saved, Type: "application/x-tar"})
			c.Do(Req{Method: "POST", Path: "/images/load?case=notatar", Body: []byte("not a tar"), Type: "application/x-tar"})
			c.Delete("/images/%s", repo+":v1")
		}},
		&scenario{name: "images/prune", run: func(c *C, e *env) {
			c.Post("/images/prune?filters=%s", `{"dangling":["true"],"label":["compat-none=1"]}`)
			c.Post("/images/prune?filters=%s", `{"bogus":["x"]}`)
		}},
		&scenario{name: "images/import", run: func(c *C, e *env) {
			layer := simpleTar(map[string]string{"hello.txt": "imported\n"})
			c.Do(Req{Method: "POST", Path: "/images/create?fromSrc=-&repo=%s&tag=v1", Args: []any{e.registry + "/compat/imported"}, Body: layer, Type: "application/x-tar"})
			c.Get("/images/%s/json", e.registry+"/compat/imported:v1")
			c.Delete("/images/%s", e.registry+"/compat/imported:v1")
		}},
		&scenario{name: "images/search", intentional: map[string]string{
			`GET /images/search`: "a registry without a search API (the test's registry has none): 501 naming it; dockerd answers 500 with the registry's status",
		}, run: func(c *C, e *env) {
			c.Get("/images/search?term=%s", e.registry+"/compat")
		}},
		&scenario{name: "images/distribution", run: func(c *C, e *env) {
			c.Get("/distribution/%s/json", e.busybox)
		}},
		&scenario{name: "auth", run: func(c *C, e *env) {
			c.Do(Req{Method: "POST", Path: "/auth", Body: map[string]any{"serveraddress": e.registry, "username": "u", "password": "p"}})
		}},
		&scenario{name: "commit", run: func(c *C, e *env) {
			since := Since()
			id := c.Create(e, "a", map[string]any{"Cmd": sh("echo changed > /etc/changed; sleep 30"), "Env": []string{"A=1"}, "Labels": map[string]string{"l": "1"}})
			c.Start(id)
			time.Sleep(300 * time.Millisecond)
			repo := e.registry + "/compat/committed"
			r := c.Do(Req{Method: "POST", Path: "/commit?container=%s&repo=%s&tag=v1&comment=hi&author=me", Args: []any{id, repo}, Body: map[string]any{"Env": []string{"B=2"}, "Cmd": []string{"cat", "/etc/changed"}}})
			c.Value("running after commit", c.Inspect(id).Get("State.Running"))
			c.Value("paused after commit", c.Inspect(id).Get("State.Paused"))
			img := c.Get("/images/%s/json", repo+":v1")
			c.Value("Parent set", img.Str("Parent") != "")
			c.Value("Config.Env", img.Get("Config.Env"))
			c.Value("Config.Cmd", img.Get("Config.Cmd"))
			c.Value("Comment", img.Get("Comment"))
			c.Value("Author", img.Get("Author"))
			c.Get("/images/%s/history", repo+":v1")
			c.Do(Req{Method: "POST", Path: "/commit?container=%s&repo=%s&tag=v2&pause=0&changes=%s", Args: []any{id, repo, "EXPOSE 8080"}})
			c.Value("v2 ports", c.Get("/images/%s/json", repo+":v2").Get("Config.ExposedPorts"))
			c.Do(Req{Method: "POST", Path: "/commit?container=%s&changes=%s", Args: []any{id, "BOGUS x"}})
			c.Do(Req{Method: "POST", Path: "/commit?container=%s", Args: []any{"nosuchcontainer"}})
			c.Do(Req{Method: "POST", Path: "/commit"})
			run, code := c.Run(e, "b", map[string]any{"Image": repo + ":v1"})
			c.Value("committed image runs", code)
			c.Get("/containers/%s/logs?stdout=1", run)
			c.Remove(run)
			c.Remove(id)
			c.Delete("/images/%s", r.Str("Id"))
			c.Delete("/images/%s?force=1", repo+":v1")
			c.Delete("/images/%s", repo+":v2")
			c.Events(since, map[string][]string{"event": {"commit"}})
		}},
		&scenario{name: "archive", intentional: map[string]string{
			`case=notadir`: current400,
			`case=bad`:     "an archive that cannot be extracted (malformed, or a file over a directory with noOverwriteDirNonDir) is the client's error: 400; dockerd answers 500",
		}, run: func(c *C, e *env) {
			id := c.Create(e, "a", map[string]any{"Cmd": sh("mkdir -p /d/sub && echo hi > /d/f && ln -s f /d/link && sleep 30")})
			c.Start(id)
			time.Sleep(300 * time.Millisecond)
			for _, p := range []string{"/d/f", "/d", "/d/", "/d/link", "/nope", "/d/f/"} {
				r := c.Do(Req{Method: "HEAD", Path: "/containers/%s/archive?path=%s", Args: []any{id, p}})
				c.Value("stat "+p, pathStat(r))
				r = c.Get("/containers/%s/archive?path=%s", id, p)
				c.Value("entries "+p, tarNames(r.Body))
			}
			c.Get("/containers/%s/archive", id)
			in := simpleTar(map[string]string{"new.txt": "new\n", "nd/x": "x\n"})
			c.Do(Req{Method: "PUT", Path: "/containers/%s/archive?path=%s", Args: []any{id, "/d"}, Body: in, Type: "application/x-tar"})
			c.Do(Req{Method: "PUT", Path: "/containers/%s/archive?path=%s", Args: []any{id, "/nope"}, Body: in, Type: "application/x-tar"})
			c.Do(Req{Method: "PUT", Path: "/containers/%s/archive?case=notadir&path=%s", Args: []any{id, "/d/f"}, Body: in, Type: "application/x-tar"})
			c.Do(Req{Method: "PUT", Path: "/containers/%s/archive?case=bad&path=%s&noOverwriteDirNonDir=1", Args: []any{id, "/d"}, Body: simpleTar(map[string]string{"sub": "file over dir\n"}), Type: "application/x-tar"})
			c.Do(Req{Method: "PUT", Path: "/containers/%s/archive?case=bad&path=%s", Args: []any{id, "/d"}, Body: []byte("not a tar"), Type: "application/x-tar"})
			r := c.Get("/containers/%s/archive?path=%s", id, "/d")
			c.Value("after put", tarNames(r.Body))
			c.Post("/containers/%s/kill", id)
			c.Wait(id)
			r = c.Get("/containers/%s/archive?path=%s", id, "/d/new.txt")
			c.Value("stopped container", tarNames(r.Body))
			c.Remove(id)
		}},
	)
}

// tarNames lists an archive's entries with their types and sizes.
func tarNames(b []byte) string {
	tr := tar.NewReader(bytes.NewReader(b))
	var out []string
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				out = append(out, "error: "+err.Error())
			}
			break
		}
		size := ""
		if h.Typeflag == tar.TypeReg {
			size = " " + itoa(h.Size)
		}
		out = append(out, string(h.Typeflag)+" "+h.Name+size+" "+h.Linkname)
	}
	return strings.Join(out, ", ")
}

// saveSummary is what a client of docker save reads: manifest.json's
// entries (tags and layer count) and whether each file it names is there.
func saveSummary(b []byte) string {
	tr := tar.NewReader(bytes.NewReader(b))
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				return "error: " + err.Error()
			}
			break
		}
		data, _ := io.ReadAll(tr)
		files[strings.TrimPrefix(h.Name, "./")] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		return "manifest.json: " + err.Error()
	}
	var out []string
	for _, m := range manifest {
		ok := files[m.Config] != nil
		for _, l := range m.Layers {
			ok = ok && files[l] != nil
		}
		out = append(out, strings.Join(m.RepoTags, "+")+" layers="+itoa(int64(len(m.Layers)))+" complete="+map[bool]string{true: "yes", false: "no"}[ok])
	}
	return strings.Join(sortStrings(out), "; ")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func simpleTar(files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// pathStat decodes the X-Docker-Container-Path-Stat header, less the
// modification time.
func pathStat(r *Resp) string {
	h := ""
	if r.Header != nil {
		h = r.Header.Get("X-Docker-Container-Path-Stat")
	}
	if h == "" {
		return "no stat header"
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return "bad stat header: " + err.Error()
	}
	var st map[string]any
	json.Unmarshal(b, &st)
	delete(st, "mtime")
	out, _ := json.Marshal(st)
	return string(out)
}
