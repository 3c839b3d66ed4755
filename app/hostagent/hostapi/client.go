package hostapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/guest-agent/control"
)

// Client talks to a running hostd.
type Client struct {
	hc     *http.Client
	socket string
}

// NewClient returns a client for the hostd socket at path.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{hc: &http.Client{Transport: tr}, socket: socket}
}

// ErrNotRunning means no hostd answers on the socket.
var ErrNotRunning = errors.New("berth host agent is not running")

// APIError is an error answer from hostd.
type APIError struct {
	Status int
	ErrorBody
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://hostd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		e := &APIError{Status: resp.StatusCode}
		if json.NewDecoder(resp.Body).Decode(&e.ErrorBody) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("hostd: %s %s: %s", method, path, resp.Status)
		}
		return nil, e
	}
	if out != nil {
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("hostd: %s %s: bad answer: %w", method, path, err)
		}
	}
	return resp, nil
}

// Status returns the machine's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	_, err := c.do(ctx, http.MethodGet, "/status", nil, nil, &s)
	return s, err
}

// Start boots the machine and returns once the engine answers.
func (c *Client) Start(ctx context.Context) (Status, error) {
	var s Status
	_, err := c.do(ctx, http.MethodPost, "/start", nil, nil, &s)
	return s, err
}

// Stop shuts the machine down (at once with force).
func (c *Client) Stop(ctx context.Context, force bool) (Status, error) {
	var s Status
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	_, err := c.do(ctx, http.MethodPost, "/stop", q, nil, &s)
	return s, err
}

// Restart stops and starts the machine.
func (c *Client) Restart(ctx context.Context) (Status, error) {
	var s Status
	_, err := c.do(ctx, http.MethodPost, "/restart", nil, nil, &s)
	return s, err
}

// Events streams status changes, the current status first, until ctx ends
// or hostd goes away (then the channel closes).
func (c *Client) Events(ctx context.Context) (<-chan Status, error) {
	resp, err := c.do(ctx, http.MethodGet, "/events", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Status, 8)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var s Status
			if err := dec.Decode(&s); err != nil {
				return
			}
			select {
			case ch <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Logs returns a log stream: source is "hostd", "agent" or "console";
// tail < 0 means all; follow keeps it open for new lines.
func (c *Client) Logs(ctx context.Context, source string, tail int, follow bool) (io.ReadCloser, error) {
	q := url.Values{"source": {source}, "tail": {strconv.Itoa(tail)}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/logs", q, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Settings returns the saved settings and the host's limits.
func (c *Client) Settings(ctx context.Context) (SettingsResponse, error) {
	var s SettingsResponse
	_, err := c.do(ctx, http.MethodGet, "/settings", nil, nil, &s)
	return s, err
}

// SaveSettings validates and saves s; a *APIError with Fields explains a refusal.
func (c *Client) SaveSettings(ctx context.Context, s config.Settings) (SettingsResponse, error) {
	var out SettingsResponse
	_, err := c.do(ctx, http.MethodPut, "/settings", nil, s, &out)
	return out, err
}

// Shell opens a root shell in the VM (a command instead with o.Cmd): the
// connection carries its terminal; id names it for ResizeShell. The
// connection closes when the shell exits.
func (c *Client) Shell(ctx context.Context, o control.ShellOptions) (conn net.Conn, id string, err error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, "", ErrNotRunning
	}
	conn, resp, err := control.Upgrade(ctx, nc, "hostd", "/shell?"+o.Query().Encode())
	if err != nil {
		nc.Close()
		return nil, "", fmt.Errorf("shell: %w", err)
	}
	return conn, resp.Header.Get(control.ShellHeader), nil
}

// ResizeShell sets the terminal size of shell id.
func (c *Client) ResizeShell(ctx context.Context, id string, rows, cols uint16) error {
	q := url.Values{"rows": {strconv.Itoa(int(rows))}, "cols": {strconv.Itoa(int(cols))}}
	resp, err := c.do(ctx, http.MethodPost, "/shell/"+url.PathEscape(id)+"/resize", q, nil, nil)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// ShellExitCode returns how shell id ended, once its connection closed.
func (c *Client) ShellExitCode(ctx context.Context, id string) (int, error) {
	var e control.ShellExit
	_, err := c.do(ctx, http.MethodGet, "/shell/"+url.PathEscape(id)+"/exit", nil, nil, &e)
	return e.ExitCode, err
}

// Shutdown asks hostd to exit, stopping the VM first when stopVM is set.
func (c *Client) Shutdown(ctx context.Context, stopVM bool) error {
	q := url.Values{}
	if stopVM {
		q.Set("stopVM", "1")
	}
	resp, err := c.do(ctx, http.MethodPost, "/shutdown", q, nil, nil)
	if err == nil {
		resp.Body.Close()
	}
	return err
}
