package engine_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

func TestVersionAndPing(t *testing.T) {
	a := testkit.StartAgent(t, testkit.AgentOptions{})
	d := testkit.NewDocker(t, a.Host)

	out := d.Must("version", "--format", "{{.Server.Os}}/{{.Server.Arch}} {{.Server.APIVersion}}")
	if got := strings.TrimSpace(out); got != "linux/amd64 1.52" {
		t.Fatalf("docker version: %q", got)
	}

	c := a.HTTPClient()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, "http://berth/_ping", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Api-Version") != "1.52" {
			t.Fatalf("%s /_ping: %d %v", method, resp.StatusCode, resp.Header)
		}
		if method == http.MethodGet && string(body) != "OK" {
			t.Fatalf("GET /_ping body %q", body)
		}
	}

	// Too-old clients are refused with the reason; unknown paths are 404 JSON.
	for path, want := range map[string]int{"/v1.23/version": 400, "/v1.24/version": 200, "/v1.44/version": 200, "/v1.53/version": 400, "/nope": 404} {
		resp, err := c.Get("http://berth" + path)
		if err != nil {
			t.Fatal(err)
		}
		var msg struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&msg)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d (%s)", path, resp.StatusCode, want, msg.Message)
		}
		if want != 200 && msg.Message == "" {
			t.Fatalf("%s: error without a message", path)
		}
	}
}
