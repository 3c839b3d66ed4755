package fake

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/drivertest"
	"github.com/berth-dev/berth/vm/transport"
)

// The fake passes the same suite as real drivers, so host-agent tests that
// use it see the lifecycle they will see in production.
func TestConformance(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			io.WriteString(w, "OK")
			return
		}
		http.NotFound(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	drivertest.Run(t, drivertest.Options{
		New: func(t *testing.T) (driver.Driver, *driver.Machine) {
			return New(transport.Routes{transport.PortEngine: "unix://" + sock}), &driver.Machine{Name: "fake"}
		},
		Kill: func(t *testing.T, d driver.Driver) { d.(*Driver).Crash("killed by the test") },
	})
}
