package engineapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
)

// router matches "METHOD /path" against anchored regular expressions, in
// registration order. The Engine API needs this rather than ServeMux
// wildcards: image names contain slashes (/images/localhost:5000/app/json).
type router struct {
	routes []route
}

type route struct {
	method  string
	re      *regexp.Regexp
	names   []string
	handler handlerFunc
}

// handlerFunc is an Engine API handler; a returned error is written as
// {"message": …} with the status its errdefs kind maps to.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers pattern, where {name} matches one path segment and
// {name...} matches the rest, slashes included (non-greedy when followed
// by a suffix, so /images/{name...}/json works).
func (rt *router) handle(method, pattern string, h handlerFunc) {
	var names []string
	var b strings.Builder
	b.WriteString("^")
	rest := pattern
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		j := strings.IndexByte(rest[i:], '}') + i
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		name := rest[i+1 : j]
		if strings.HasSuffix(name, "...") {
			names = append(names, strings.TrimSuffix(name, "..."))
			b.WriteString("(.+?)")
		} else {
			names = append(names, name)
			b.WriteString("([^/]+)")
		}
		rest = rest[j+1:]
	}
	b.WriteString("$")
	rt.routes = append(rt.routes, route{method: method, re: regexp.MustCompile(b.String()), names: names, handler: h})
}

type varsKey struct{}

// lookup finds the handler for method and path; found reports whether any
// route matched the path at all.
func (rt *router) lookup(method, path string) (h handlerFunc, vars map[string]string, found bool) {
	for _, r := range rt.routes {
		m := r.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		found = true
		if r.method != method && !(method == http.MethodHead && r.method == http.MethodGet) {
			continue
		}
		vars = make(map[string]string, len(r.names))
		for i, n := range r.names {
			vars[n] = m[i+1]
		}
		return r.handler, vars, true
	}
	return nil, nil, found
}

// pathVar returns the {name} captured for this request.
func pathVar(r *http.Request, name string) string {
	vars, _ := r.Context().Value(varsKey{}).(map[string]string)
	return vars[name]
}

func withVars(ctx context.Context, vars map[string]string) context.Context {
	return context.WithValue(ctx, varsKey{}, vars)
}
