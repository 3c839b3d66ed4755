//go:build linux

package engineapi

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/errdefs"
)

func TestCheckForJSON(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		ok       bool
	}{
		{"application/json", `{}`, true},
		{"application/json; charset=utf-8", `{}`, true},
		{"", "", true},
		{"", `{}`, false},
		{"text/plain", `{}`, false},
		{"text/plain", "", false},
		{"application/x-www-form-urlencoded", "a=b", false},
		{"multipart/form-data; boundary=x", "--x--", false},
		{"application/jsonp", `{}`, false},
		{"application/json;;", `{}`, false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://berth/containers/create", strings.NewReader(tc.body))
		if tc.body == "" {
			r.Body = http.NoBody
		}
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		err := checkForJSON(r)
		if tc.ok != (err == nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("Content-Type %q body %q: %v", tc.ct, tc.body, err)
		}
	}
	// A chunked body (no length) without a Content-Type is refused too.
	r, _ := http.NewRequest(http.MethodPost, "http://berth/containers/create", io.NopCloser(strings.NewReader(`{}`)))
	r.ContentLength = -1
	if err := checkForJSON(r); err == nil {
		t.Error("chunked body without Content-Type accepted")
	}
}

// TestTCPGuard drives a real TCP listener: only requests naming the
// listener or a loopback name, and carrying no Origin, reach the handler.
func TestTCPGuard(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tcpGuard(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") }))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		host, origin string
		ok           bool
	}{
		{addr, "", true},
		{"localhost:" + port, "", true},
		{"api.moby.localhost", "", true},
		{"[::1]:" + port, "", true},
		{"127.0.0.1", "", true},
		{"evil.example:" + port, "", false},
		{"localhost.evil.example:" + port, "", false},
		{"berth", "", false},
		{"10.1.2.3:" + port, "", false},
		{addr, "http://evil.example:" + port, false},
		{addr, "null", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/_ping", nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := resp.StatusCode == 200 && string(b) == "served"
		if served != tc.ok || (!tc.ok && resp.StatusCode != http.StatusForbidden) {
			t.Errorf("Host %q Origin %q: %d %s", tc.host, tc.origin, resp.StatusCode, b)
		}
	}
}
