package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// machine records the calls; the real one (guest-agent/pid1) is exercised
// through a booted VM in vm/qemu's end-to-end test.
type machine struct {
	mu       sync.Mutex
	shutdown int
	set      time.Time
	trimErr  error
}

func (m *machine) Health(context.Context) Health {
	return Health{AgentVersion: "v", Uptime: Duration(90 * time.Second), Engine: Engine{Running: true, Ready: true, PID: 42}}
}
func (m *machine) Shutdown()                            { m.mu.Lock(); m.shutdown++; m.mu.Unlock() }
func (m *machine) SetTime(t time.Time) error            { m.set = t; return nil }
func (m *machine) Trim(context.Context) (uint64, error) { return 4096, m.trimErr }

func client(t *testing.T, m Machine) *Client {
	srv := httptest.NewServer(Handler(m))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return &Client{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
}

func TestClientServer(t *testing.T) {
	m := &machine{}
	c := client(t, m)
	ctx := context.Background()
	h, err := c.Health(ctx)
	if err != nil || h.AgentVersion != "v" || time.Duration(h.Uptime) != 90*time.Second || h.Engine.PID != 42 {
		t.Fatalf("health: %+v %v", h, err)
	}
	now := time.Now()
	if err := c.SetTime(ctx, now); err != nil || !m.set.Equal(time.Unix(0, now.UnixNano())) {
		t.Fatalf("set time: %v (got %v)", err, m.set)
	}
	if n, err := c.Trim(ctx); err != nil || n != 4096 {
		t.Fatalf("trim: %d %v", n, err)
	}
	m.trimErr = errors.New("no data disk mounted")
	if _, err := c.Trim(ctx); err == nil || !strings.Contains(err.Error(), "no data disk mounted") {
		t.Fatalf("trim error: %v", err)
	}
	if err := c.Shutdown(ctx); err != nil || m.shutdown != 1 {
		t.Fatalf("shutdown: %v (%d)", err, m.shutdown)
	}
}

func TestBadRequests(t *testing.T) {
	srv := httptest.NewServer(Handler(&machine{}))
	defer srv.Close()
	for _, body := range []string{"", "{", `{"unix_nano": -5}`, `{"unix_nano": "x"}`} {
		resp, err := http.Post(srv.URL+"/time", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /time %q: %s", body, resp.Status)
		}
	}
	resp, err := http.Get(srv.URL + "/shutdown")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /shutdown: %s", resp.Status)
	}
}
