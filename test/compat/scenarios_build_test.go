package compat_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// buildCtx is a build context: file name to content.
type buildCtx map[string]string

func (b buildCtx) tar() []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortStrings(keys(b)) {
		body := b[name]
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

var (
	// A step that only changes the config: dockerd 20.10 commits it through
	// a container it creates and removes, Berth without one.
	configSteps = regexp.MustCompile(`(?m)(^Step [0-9]+/[0-9]+ : (ENV|LABEL|CMD|ENTRYPOINT|EXPOSE|VOLUME|WORKDIR|USER|STOPSIGNAL|HEALTHCHECK|SHELL|ONBUILD|ARG|MAINTAINER)\b.*\n) ---> Running in <id>\n(Removing intermediate container <id>\n)?`)
	idInText    = regexp.MustCompile(`\b(sha256:)?[0-9a-f]{12,64}\b`)
	portInText  = regexp.MustCompile(`127\.0\.0\.1:[0-9]+/`)
)

// Build posts a context and records the build's output text, IDs
// replaced, and whether it ended with an image ID (aux) or an error.
func (c *C) Build(query string, body []byte, header map[string]string) *Resp {
	r := c.Do(Req{Method: "POST", Path: "/build?" + query, Body: body, Type: "application/x-tar", Header: header})
	var text, errMsg strings.Builder
	aux := false
	code := 0.0
	for _, m := range r.Msgs {
		mm, _ := m.(map[string]any)
		if s, ok := mm["stream"].(string); ok {
			text.WriteString(s)
		}
		if _, ok := mm["aux"]; ok {
			aux = true
		}
		if s, ok := mm["error"].(string); ok {
			errMsg.WriteString(s)
			code, _ = walk(mm, "errorDetail.code").(float64)
		}
	}
	norm := func(s string) string {
		return portInText.ReplaceAllString(idInText.ReplaceAllString(s, "<id>"), "REGISTRY/")
	}
	c.Value("build output", configSteps.ReplaceAllString(norm(text.String()), "$1"))
	c.Value("build result", map[string]any{"aux": aux, "error": errMsg.Len() > 0, "code": code})
	return r
}

func init() {
	df := func(e *env, rest string) string { return "FROM " + e.busybox + "\n" + rest }
	register(
		&scenario{name: "build/classic", run: func(c *C, e *env) {
			since := Since()
			ctx := buildCtx{"Dockerfile": df(e, "ENV A=1\nCOPY f /f\nRUN echo built; cat /f\nLABEL l=1\nCMD [\"cat\", \"/f\"]\n"), "f": "file\n"}.tar()
			tag := e.registry + "/compat/built:v1"
			c.Build("t="+url.QueryEscape(tag), ctx, nil)
			c.Get("/images/%s/json", tag)
			c.Get("/images/%s/history", tag)
			c.Build("t="+url.QueryEscape(tag), ctx, nil) // cached
			c.Build("t="+url.QueryEscape(tag)+"&q=1", ctx, nil)
			c.Build("t="+url.QueryEscape(tag)+"&nocache=1&rm=0", ctx, nil)
			c.Build("t="+url.QueryEscape(tag)+"&nocache=1&forcerm=1", ctx, nil)
			c.Delete("/images/%s", tag)
			c.Events(since, map[string][]string{"type": {"image"}, "image": {tag}, "event": {"tag", "untag"}})
		}},
		&scenario{name: "build/dockerfile-paths", run: func(c *C, e *env) {
			ctx := buildCtx{"sub/dir/Dockerfile.custom": df(e, "RUN echo nested\n"), "Dockerfile": df(e, "RUN echo root\n")}.tar()
			c.Build("dockerfile=sub/dir/Dockerfile.custom", ctx, nil)
			c.Build("dockerfile=./sub/dir/Dockerfile.custom", ctx, nil)
			c.Build("dockerfile=/sub/dir/Dockerfile.custom", ctx, nil)
			c.Build("dockerfile=../Dockerfile", ctx, nil)
			c.Build("dockerfile=nosuch", ctx, nil)
			c.Build("", buildCtx{"f": "no dockerfile"}.tar(), nil)
			// A Dockerfile from outside the context, as the docker CLI and
			// docker-py send it: added to the archive under a random name.
			c.Build("dockerfile=.dockerfile.0123456789ab", buildCtx{".dockerfile.0123456789ab": df(e, "RUN echo outside\n"), "f": "x"}.tar(), nil)
			c.Build("", buildCtx{"dockerfile": df(e, "RUN echo lower\n")}.tar(), nil)
		}},
		&scenario{name: "build/gzip-context", run: func(c *C, e *env) {
			ctx := buildCtx{"Dockerfile": df(e, "RUN echo gzipped\n")}.tar()
			c.Build("", gz(ctx), nil)
			c.Build("", gz(ctx), map[string]string{"Content-Encoding": "gzip"})
			c.Build("", []byte("not an archive"), nil)
		}},
		&scenario{name: "build/cache-from", intentional: map[string]string{
			`value: build output`: "an image named in cache-from is a cache source: the step reuses the image built before; dockerd 20.10's classic builder ran the step again",
		}, run: func(c *C, e *env) {
			ctx := buildCtx{"Dockerfile": df(e, "RUN echo cached-step > /c\n")}.tar()
			tag := e.registry + "/compat/cachesrc:v1"
			c.Build("t="+url.QueryEscape(tag), ctx, nil)
			c.Build("cachefrom="+url.QueryEscape(`["`+tag+`"]`), ctx, nil)
			c.Build("cachefrom="+url.QueryEscape(`["nosuch/image:x"]`), ctx, nil)
			c.Delete("/images/%s", tag)
		}},
		&scenario{name: "build/args-labels-target", run: func(c *C, e *env) {
			ctx := buildCtx{"Dockerfile": "ARG BASE=" + e.busybox + "\nFROM $BASE AS first\nARG V=default\nRUN echo \"V=$V\"\nFROM first AS second\nRUN echo second\n"}.tar()
			tag := e.registry + "/compat/args:v1"
			c.Build("t="+url.QueryEscape(tag)+"&buildargs="+url.QueryEscape(`{"V":"given","UNUSED":"x"}`)+"&labels="+url.QueryEscape(`{"lab":"el"}`)+"&target=first", ctx, nil)
			r := c.Get("/images/%s/json", tag)
			c.Value("labels", r.Get("Config.Labels"))
			c.Build("target=nosuch", ctx, nil)
			c.Build("buildargs=notjson", ctx, nil)
			c.Delete("/images/%s", tag)
		}},
		&scenario{name: "build/failures", run: func(c *C, e *env) {
			c.Build("", buildCtx{"Dockerfile": df(e, "RUN echo failing; exit 3\n")}.tar(), nil)
			c.Build("", buildCtx{"Dockerfile": "FROM\n"}.tar(), nil)
			c.Build("", buildCtx{"Dockerfile": df(e, "BOGUS instruction\n")}.tar(), nil)
			c.Build("", buildCtx{"Dockerfile": "FROM nosuch/image:missing\n"}.tar(), nil)
			c.Build("", buildCtx{"Dockerfile": df(e, "COPY missing /x\n")}.tar(), nil)
			c.Build("", buildCtx{"Dockerfile": ""}.tar(), nil)
		}},
		&scenario{name: "build/prune", intentional: map[string]string{`^POST /build/cancel$`: current400}, run: func(c *C, e *env) {
			c.Post("/build/prune?filters=%s", `{"until":["1000h"]}`)
			c.Post("/build/prune?filters=%s", `{"bogus":["x"]}`)
			c.Post("/build/cancel?id=%s", "nosuchbuild")
			c.Post("/build/cancel")
		}},
	)
}
