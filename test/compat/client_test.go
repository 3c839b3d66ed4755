package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// endpoint is one engine under comparison.
type endpoint struct {
	name   string // "berth" or "dockerd"
	socket string
	client *http.Client
}

func newEndpoint(name, socket string) *endpoint {
	return &endpoint{name: name, socket: socket, client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}}}
}

// obs is one thing a scenario observed on one engine: a response (its
// status, content type, JSON keys, stream framing and content) or a value
// the scenario chose to compare. The two engines' lists are compared item
// by item; body is shown on a difference, never compared.
type obs struct {
	label    string // "POST /containers/{}/start?t=1", or "value: …"
	endpoint string // "POST /containers/{}/start" ("" for values)
	status   int
	ctype    string
	keys     []string // path=kind, sorted
	framing  string   // streams: "mux", "raw" or "empty"
	streams  string   // streams: what each stream carried
	value    string   // values and transport errors
	body     string
}

// C is one scenario's run on one engine. Calls never fail the test: what
// happened is recorded, and the comparison reports it.
type C struct {
	eng      *endpoint
	scenario string
	version  string
	mu       sync.Mutex
	obs      []obs
	vars     map[string]string
	failed   []string // berth-only scenarios: failed checks
}

// Check records a failed expectation of a berth-only scenario.
func (c *C) Check(ok bool, format string, args ...any) {
	if !ok {
		c.mu.Lock()
		c.failed = append(c.failed, fmt.Sprintf(format, args...))
		c.mu.Unlock()
	}
}

// Name is a name unique to this scenario (the same on both engines).
func (c *C) Name(s string) string { return "compat-" + c.scenario + "-" + s }

// Engine is "berth" or "dockerd", for the few requests that must differ
// (a path on the host, a subnet).
func (c *C) Engine() string { return c.eng.name }

// Version runs the following requests at API version v ("" for none).
func (c *C) Version(v string) { c.version = v }

func (c *C) prefix() string {
	if c.version == "" {
		return ""
	}
	return "/v" + c.version
}

func (c *C) record(o obs) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

// Value records v to be compared with the other engine's.
func (c *C) Value(label string, v any) {
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	c.record(obs{label: "value: " + label, value: s})
}

// Resp is a decoded response.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   any   // the body, when it is one JSON value
	Msgs   []any // the body, when it is a stream of JSON values
	Err    error
}

// Get walks a dotted path ("State.ExitCode", "Mounts.0.Source").
func (r *Resp) Get(path string) any {
	if r == nil {
		return nil
	}
	return walk(r.JSON, path)
}

func walk(v any, path string) any {
	if path == "" {
		return v
	}
	for _, p := range strings.Split(path, ".") {
		switch vv := v.(type) {
		case map[string]any:
			v = vv[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(vv) {
				return nil
			}
			v = vv[i]
		default:
			return nil
		}
	}
	return v
}

// Str is Get as a string ("" when absent).
func (r *Resp) Str(path string) string {
	s, _ := r.Get(path).(string)
	return s
}

// Req describes one request. Path may hold %s verbs, filled from Args:
// the label keeps {} in their place, so IDs and names do not count as
// differences and the endpoint is found in the API's list.
type Req struct {
	Method  string
	Path    string
	Args    []any
	Body    any // nil, []byte (sent as is), io.Reader, or a value sent as JSON
	Type    string
	Header  map[string]string
	Stdin   string        // hijacked requests: written after the response headers
	Timeout time.Duration // streams: how long to read (default 20 s)
}

func (q Req) url() (full, label, ep string) {
	full = q.Path
	label = q.Path
	if len(q.Args) > 0 {
		args := make([]any, len(q.Args))
		holes := make([]any, len(q.Args))
		pathPart, _, _ := strings.Cut(q.Path, "?")
		inPath := strings.Count(pathPart, "%s")
		for i, a := range q.Args {
			switch {
			case i >= inPath:
				args[i] = url.QueryEscape(fmt.Sprint(a))
			case strings.HasPrefix(q.Path, "/images/") || strings.HasPrefix(q.Path, "/distribution/"):
				args[i] = fmt.Sprint(a) // image names keep their slashes
			default:
				args[i] = url.PathEscape(fmt.Sprint(a))
			}
			holes[i] = "{}"
		}
		full = fmt.Sprintf(q.Path, args...)
		label = fmt.Sprintf(q.Path, holes...)
	}
	ep, _, _ = strings.Cut(label, "?")
	return full, q.Method + " " + label, q.Method + " " + ep
}

func (q Req) body() (io.Reader, string, error) {
	switch b := q.Body.(type) {
	case nil:
		return nil, q.Type, nil
	case []byte:
		return bytes.NewReader(b), q.Type, nil
	case io.Reader:
		return b, q.Type, nil
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, "", err
		}
		t := q.Type
		if t == "" {
			t = "application/json"
		}
		return bytes.NewReader(j), t, nil
	}
}

// Do sends q and records the response.
func (c *C) Do(q Req) *Resp {
	r, o := c.send(q)
	c.record(o)
	return r
}

// Pending is a request sent in the background (a wait, a followed log).
type Pending struct {
	c    *C
	done chan struct{}
	r    *Resp
	o    obs
}

// Do2 sends q in the background; Finish waits for the answer and records
// it at that point of the sequence.
func (c *C) Do2(q Req) *Pending {
	p := &Pending{c: c, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.r, p.o = c.send(q)
	}()
	time.Sleep(100 * time.Millisecond) // let it reach the engine first
	return p
}

// Finish waits for the answer and records it.
func (p *Pending) Finish() *Resp {
	<-p.done
	p.c.record(p.o)
	return p.r
}

func (c *C) send(q Req) (*Resp, obs) {
	full, label, ep := q.url()
	body, ctype, err := q.body()
	r := &Resp{}
	if err == nil {
		var req *http.Request
		req, err = http.NewRequest(q.Method, "http://docker"+c.prefix()+full, body)
		if err == nil {
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			for k, v := range q.Header {
				req.Header.Set(k, v)
			}
			timeout := q.Timeout
			if timeout == 0 {
				timeout = 2 * time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var resp *http.Response
			resp, err = c.eng.client.Do(req.WithContext(ctx))
			if err == nil {
				r.Status, r.Header = resp.StatusCode, resp.Header
				r.Body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil && ctx.Err() != nil && q.Timeout != 0 {
					err = nil // a stream read for a while, as asked
				}
			}
		}
	}
	r.Err = err
	decodeBody(r)
	o := obs{label: label, endpoint: ep, status: r.Status, ctype: mediaType(r.Header), body: string(r.Body)}
	if err != nil {
		o.value = "transport error: " + normalizeErr(err)
	}
	if isStream(o.ctype) || (streamEndpoint(ep) && r.Status == http.StatusOK) {
		o.framing, o.streams = demux(r.Body)
	} else {
		o.keys = keysOf(r)
	}
	return r, o
}

func normalizeErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

func mediaType(h http.Header) string {
	if h == nil {
		return ""
	}
	t, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.TrimSpace(t)
}

// streamEndpoint is true for the endpoints that answer with a stdio
// stream, whatever content type the engine sends (dockerd 20.10 sends none
// with logs).
func streamEndpoint(ep string) bool {
	return strings.HasSuffix(ep, "/logs") || strings.HasSuffix(ep, "/attach") || strings.HasSuffix(ep, "/start") && strings.HasPrefix(ep, "POST /exec/")
}

func isStream(ct string) bool {
	return ct == "application/vnd.docker.raw-stream" || ct == "application/vnd.docker.multiplexed-stream"
}

func decodeBody(r *Resp) {
	b := bytes.TrimSpace(r.Body)
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		r.Msgs = append(r.Msgs, v)
	}
	if len(r.Msgs) == 1 {
		r.JSON = r.Msgs[0]
	}
}

var hexID = regexp.MustCompile(`^(sha256:)?[0-9a-f]{12,64}$`)

// keysOf is the set of JSON key paths in a response, each with the kind of
// its value; the elements of an array share one path ("Mounts[].Type").
// Keys that are IDs become <id>; a stream of values gives the union.
func keysOf(r *Resp) []string {
	set := map[string]bool{}
	for _, m := range r.Msgs {
		collectKeys(set, "", m)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func collectKeys(set map[string]bool, path string, v any) {
	kind := ""
	switch vv := v.(type) {
	case nil:
		kind = "null"
	case bool:
		kind = "bool"
	case float64:
		kind = "number"
	case string:
		kind = "string"
	case []any:
		kind = "array"
		for _, e := range vv {
			collectKeys(set, path+"[]", e)
		}
	case map[string]any:
		kind = "object"
		for k, e := range vv {
			switch {
			case hexID.MatchString(k):
				k = "<id>"
			case strings.HasSuffix(path, "Labels") || strings.HasSuffix(path, "Options") || strings.HasSuffix(path, "DriverOpts"):
				k = "<key>" // data, not schema: names the scenario chose
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			collectKeys(set, p, e)
		}
	}
	if path != "" {
		set[path+"="+kind] = true
	}
}

// demux reads a hijacked or logs stream: multiplexed when the whole body
// parses as 8-byte-header frames, else raw. streams says what each stream
// carried, in order of first appearance.
func demux(b []byte) (framing, streams string) {
	if len(b) == 0 {
		return "empty", ""
	}
	var parts [4]bytes.Buffer
	var order []int
	rest := b
	ok := true
	for len(rest) > 0 {
		if len(rest) < 8 || rest[0] > 3 || rest[1] != 0 || rest[2] != 0 || rest[3] != 0 {
			ok = false
			break
		}
		n := int(uint32(rest[4])<<24 | uint32(rest[5])<<16 | uint32(rest[6])<<8 | uint32(rest[7]))
		if n > len(rest)-8 {
			ok = false
			break
		}
		s := int(rest[0])
		if parts[s].Len() == 0 {
			order = append(order, s)
		}
		parts[s].Write(rest[8 : 8+n])
		rest = rest[8+n:]
	}
	if !ok {
		return "raw", fmt.Sprintf("%q", b)
	}
	names := []string{"stdin", "stdout", "stderr", "systemerr"}
	var out []string
	for _, s := range order {
		out = append(out, fmt.Sprintf("%s %q", names[s], parts[s].String()))
	}
	sort.Strings(out)
	return "mux", strings.Join(out, "; ")
}

// Stream is a hijacked connection (attach, exec start) being read.
type Stream struct {
	c     *C
	o     obs
	conn  net.Conn
	br    *bufio.Reader
	done  chan struct{}
	buf   bytes.Buffer
	err   error
	resp  *Resp
	limit time.Duration
}

// Open sends q with "Upgrade: tcp", as the docker CLI does, and starts
// reading the stream; Finish waits for its end and records it.
func (c *C) Open(q Req) *Stream {
	return c.open(q, true)
}

// OpenPlain is Open without the Upgrade header (some clients send none).
func (c *C) OpenPlain(q Req) *Stream {
	return c.open(q, false)
}

func (c *C) open(q Req, upgrade bool) *Stream {
	full, label, ep := q.url()
	if !upgrade {
		label += " (no Upgrade)"
	}
	s := &Stream{c: c, o: obs{label: label, endpoint: ep}, done: make(chan struct{}), resp: &Resp{}, limit: q.Timeout}
	if s.limit == 0 {
		s.limit = 20 * time.Second
	}
	fail := func(err error) *Stream {
		s.err = err
		close(s.done)
		return s
	}
	body, ctype, err := q.body()
	if err != nil {
		return fail(err)
	}
	req, err := http.NewRequest(q.Method, "http://docker"+c.prefix()+full, body)
	if err != nil {
		return fail(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if upgrade {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "tcp")
	}
	conn, err := net.Dial("unix", c.eng.socket)
	if err != nil {
		return fail(err)
	}
	s.conn = conn
	conn.SetDeadline(time.Now().Add(s.limit))
	if err := req.Write(conn); err != nil {
		return fail(err)
	}
	s.br = bufio.NewReader(conn)
	resp, err := http.ReadResponse(s.br, req)
	if err != nil {
		return fail(err)
	}
	s.o.status = resp.StatusCode
	s.o.ctype = mediaType(resp.Header)
	s.resp.Status, s.resp.Header = resp.StatusCode, resp.Header
	hijacked := resp.StatusCode == http.StatusSwitchingProtocols || (resp.StatusCode == http.StatusOK && isStream(s.o.ctype))
	if !hijacked {
		s.resp.Body, s.err = io.ReadAll(resp.Body)
		close(s.done)
		return s
	}
	var src io.Reader = s.br
	if resp.StatusCode == http.StatusOK {
		src = resp.Body
	}
	if q.Stdin != "" {
		conn.Write([]byte(q.Stdin))
	}
	go func() {
		defer close(s.done)
		_, err := io.Copy(&s.buf, src)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			err = fmt.Errorf("stream still open after %v", s.limit)
		}
		s.err = err
	}()
	return s
}

// CloseStdin half-closes the connection: the container's stdin ends.
func (s *Stream) CloseStdin() {
	if uc, ok := s.conn.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
}

// Finish waits for the stream to end (or its time limit) and records it.
func (s *Stream) Finish() *Resp {
	<-s.done
	if s.conn != nil {
		s.conn.Close()
	}
	if s.buf.Len() > 0 || isStream(s.o.ctype) || s.o.status == http.StatusSwitchingProtocols {
		s.resp.Body = s.buf.Bytes()
		s.o.framing, s.o.streams = demux(s.resp.Body)
	} else {
		decodeBody(s.resp)
		s.o.keys = keysOf(s.resp)
	}
	s.o.body = string(s.resp.Body)
	if s.err != nil {
		s.o.value = "transport error: " + normalizeErr(s.err)
	}
	s.resp.Err = s.err
	s.c.record(s.o)
	return s.resp
}

// Close ends a stream that would not end by itself, recording nothing.
func (s *Stream) Close() {
	if s.conn != nil {
		s.conn.Close()
	}
	<-s.done
}
