//go:build linux

package engineapi

import (
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// checkForJSON refuses a request body that is not declared as JSON, as
// dockerd's CheckForJSON does: no Content-Type is fine only without a body.
// A web page can send text/plain to any address without a CORS preflight;
// it cannot send application/json.
func checkForJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && ct != "" {
		return errdefs.InvalidArgument("malformed Content-Type header (%s): %v", ct, err)
	}
	if mt != "application/json" {
		return errdefs.InvalidArgument("unsupported Content-Type header (%s): must be 'application/json'", ct)
	}
	return nil
}

// tcpGuard wraps the handler of a TCP listener, which web pages in a
// browser on the same machine can reach: a request naming a Host other than
// the listener's own address or a loopback name (a DNS-rebinding page names
// its own domain) is refused, and so is any request with an Origin header,
// which browsers add to the cross-site requests they let a page make and no
// Engine API client sends.
func tcpGuard(l net.Listener, next http.Handler) http.Handler {
	own, _, _ := net.SplitHostPort(l.Addr().String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			writeError(w, r, errdefs.Forbidden("requests from web pages (Origin %q) are refused", o))
			return
		}
		if !localHost(r.Host, own) {
			writeError(w, r, errdefs.Forbidden("Host %q is not this engine's address", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether a Host header names the listener (own is its
// IP), a loopback address, or localhost, whose names no DNS answer can
// rebind (RFC 6761: *.localhost; the docker CLI sends api.moby.localhost).
func localHost(host, own string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || ip.Equal(net.ParseIP(own))
}
