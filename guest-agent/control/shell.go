package control

// The shell endpoint: a root shell in the VM for `berth shell`, on a
// pseudo-terminal, over a hijacked HTTP connection (as docker exec does):
//
//	POST /shell?rows=R&cols=C&term=T[&plain=1][&cmd=ARG…]  Upgrade: tcp
//	  → 101 Switching Protocols, X-Berth-Shell: ID; then the terminal's bytes
//	    both ways until the shell exits (the server closes the connection)
//	POST /shell/{id}/resize?rows=R&cols=C        → 204
//	GET  /shell/{id}/exit                         → {"exitCode": N} once it ended

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// ShellHeader carries the shell's ID in the 101 answer.
const ShellHeader = "X-Berth-Shell"

// Shells is implemented by machines that open root shells for the host.
type Shells interface {
	// StartShell runs argv (a login shell when empty) with env and stdio
	// as its standard input, output and error, in a new session; when
	// terminal is set stdio is a terminal and becomes the controlling one.
	// The channel gets the exit code once the process ends.
	StartShell(argv, env []string, stdio *os.File, terminal bool) (<-chan int, error)
}

// ShellOptions are what the host asks of a shell.
type ShellOptions struct {
	Rows, Cols uint16
	Term       string   // TERM (default xterm-256color)
	Cmd        []string // a command instead of a login shell
	// Plain: the client is not a terminal (a pipe, a script): the shell
	// gets plain pipes, not a terminal (as docker exec without -t).
	Plain bool
}

// Query is o as the /shell endpoint's query parameters.
func (o ShellOptions) Query() url.Values {
	q := url.Values{}
	if o.Rows > 0 && o.Cols > 0 {
		q.Set("rows", strconv.Itoa(int(o.Rows)))
		q.Set("cols", strconv.Itoa(int(o.Cols)))
	}
	if o.Term != "" {
		q.Set("term", o.Term)
	}
	if o.Plain {
		q.Set("plain", "1")
	}
	for _, a := range o.Cmd {
		q.Add("cmd", a)
	}
	return q
}

// Shell opens a shell in the guest: the returned connection carries the
// terminal; id names it for ResizeShell.
func (c *Client) Shell(ctx context.Context, o ShellOptions) (conn net.Conn, id string, err error) {
	nc, err := c.Dial(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("guest shell: %w", err)
	}
	conn, resp, err := Upgrade(ctx, nc, "guest", "/shell?"+o.Query().Encode())
	if err != nil {
		nc.Close()
		return nil, "", fmt.Errorf("guest shell: %w", err)
	}
	return conn, resp.Header.Get(ShellHeader), nil
}

// ShellExit is how a shell ended.
type ShellExit struct {
	ExitCode int `json:"exitCode"`
}

// ShellExitCode returns the exit code of shell id once its connection
// closed.
func (c *Client) ShellExitCode(ctx context.Context, id string) (int, error) {
	var e ShellExit
	err := c.do(ctx, http.MethodGet, "/shell/"+url.PathEscape(id)+"/exit", nil, &e)
	return e.ExitCode, err
}

// ResizeShell sets the size of shell id's terminal.
func (c *Client) ResizeShell(ctx context.Context, id string, rows, cols uint16) error {
	q := url.Values{"rows": {strconv.Itoa(int(rows))}, "cols": {strconv.Itoa(int(cols))}}
	return c.do(ctx, http.MethodPost, "/shell/"+url.PathEscape(id)+"/resize?"+q.Encode(), nil, nil)
}

// Upgrade sends POST path on nc asking to switch to a raw stream (Upgrade:
// tcp, as the Engine API's attach and exec do) and returns the connection
// once the server answers 101; an error answer's message is the error.
func Upgrade(ctx context.Context, nc net.Conn, host, path string) (net.Conn, *http.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", path, host)
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, resp, fmt.Errorf("%s: %s", resp.Status, errorMessage(resp.Body))
	}
	if !stop() && ctx.Err() != nil {
		return nil, resp, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return &readerConn{Conn: nc, r: br}, resp, nil
}

// readerConn reads through the bufio.Reader that read the response head:
// the stream's first bytes may already be in it.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite ends the sending half (the shell sees end of input).
func (c *readerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
