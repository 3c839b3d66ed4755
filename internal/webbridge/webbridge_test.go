package webbridge

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

type Greeter struct{ calls int }

func (g *Greeter) Hello(name string, n int) (string, error) {
	g.calls++
	if name == "" {
		return "", errors.New("hello: say who")
	}
	return strings.Repeat("hi "+name+" ", n), nil
}

func TestBridge(t *testing.T) {
	g := &Greeter{}
	b := New(fstest.MapFS{"index.html": {Data: []byte("<html><head></head><body>app</body></html>")}}, g)
	srv := httptest.NewServer(b)
	defer srv.Close()
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/bridge/call", strings.NewReader(body))
		req.Header.Set("X-Bridge-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(out))
	}

	if code, _ := post("wrong", `{"name":"webbridge.Greeter.Hello","args":["x",1]}`); code != http.StatusForbidden {
		t.Fatalf("a call without the token: %d", code)
	}
	if code, out := post(b.Token(), `{"name":"webbridge.Greeter.Hello","args":["ann",2]}`); code != 200 || out != `{"result":"hi ann hi ann "}` {
		t.Fatalf("call: %d %s", code, out)
	}
	if code, out := post(b.Token(), `{"name":"webbridge.Greeter.Hello","args":["",1]}`); code != 500 || out != `{"error":"hello: say who"}` {
		t.Fatalf("error: %d %s", code, out)
	}
	for _, body := range []string{`{"name":"webbridge.Greeter.Nope","args":[]}`, `{"name":"webbridge.Greeter.Hello","args":["x"]}`,
		`{"name":"webbridge.Greeter.Hello","args":[1,"x"]}`, `not json`} {
		if code, _ := post(b.Token(), body); code < 400 || code >= 500 {
			t.Errorf("%s: status %d, want 4xx", body, code)
		}
	}
	if g.calls != 2 {
		t.Fatalf("calls %d", g.calls)
	}

	// The page needs the token; it gets the bridge script injected.
	if resp, _ := http.Get(srv.URL + "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("page without token: %d", resp.StatusCode)
	}
	resp, _ := http.Get(srv.URL + "/?token=" + b.Token())
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), "window.__bridgeToken") || !strings.Contains(string(page), "<body>app</body>") {
		t.Fatalf("page %s", page)
	}

	// Events stream to the page.
	resp, err := http.Get(srv.URL + "/bridge/events?token=" + b.Token())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	rd.ReadString('\n') // ": ok"
	rd.ReadString('\n')
	b.Emit("containers", []string{"a"})
	line, _ := rd.ReadString('\n')
	if line != `data: {"name":"containers","data":["a"]}`+"\n" {
		t.Fatalf("event line %q", line)
	}
}
