package hostagent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// startWait bounds how long a docker client that connects while the
// machine boots is held before it gets an error.
const startWait = 3 * time.Minute

// serveDocker forwards every connection on the docker socket to the
// engine in the guest, bytes as they are: hijacked attach and exec streams
// and their half-closes pass through. A connection that arrives while the
// machine boots waits for it.
func (a *Agent) serveDocker(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go a.forwardDocker(c)
	}
}

func (a *Agent) forwardDocker(c net.Conn) {
	ctx, cancel := context.WithTimeout(a.ctx, startWait)
	defer cancel()
	drv, err := a.waitRunning(ctx)
	if err != nil {
		refuse(c, err)
		return
	}
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	g, err := drv.DialGuest(dctx, transport.PortEngine)
	dcancel()
	if err != nil {
		a.log.Warn("docker socket: engine unreachable", "err", err)
		refuse(c, fmt.Errorf("Berth's engine did not answer: %w", err))
		return
	}
	transport.Splice(c, g)
}

// waitRunning returns the driver once the machine runs, waiting through a
// boot; a machine that is stopped (or failed) is an error saying so.
func (a *Agent) waitRunning(ctx context.Context) (driver.Driver, error) {
	for {
		a.mu.Lock()
		st, drv, b := a.st, a.drv, a.booting
		a.mu.Unlock()
		switch {
		case st.State == hostapi.Running:
			return drv, nil
		case b != nil:
			if err := wait(ctx, b.done); err != nil {
				return nil, errors.New("Berth is still starting; try again in a moment")
			}
		case st.State == hostapi.Error:
			return nil, fmt.Errorf("Berth's machine failed: %s. Start it again with `berth start`", st.Error)
		case st.State == hostapi.Stopping:
			return nil, errors.New("Berth is stopping")
		default:
			return nil, errors.New("Berth is stopped: start it with `berth start`")
		}
	}
}

// refuse answers the client's request with 503 and why, in the Engine
// API's error format, so the docker CLI prints the reason.
func refuse(c net.Conn, why error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		return
	}
	body, _ := json.Marshal(map[string]string{"message": why.Error()})
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}
