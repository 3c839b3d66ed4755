package desktop

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

// TermOutput is a piece of a terminal's output; Data is base64 (the bytes
// may split UTF-8 sequences). Exited ends the session.
type TermOutput struct {
	Data   string `json:"data,omitempty"`
	Exited bool   `json:"exited,omitempty"`
	Error  string `json:"error,omitempty"`
}

// shellCmd opens the best shell the image has: bash if present, else sh.
var shellCmd = []string{"/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"}

// Terminal opens an interactive shell in a running container, streams its
// output to "term:ID" events and returns the stream ID. Keystrokes go in
// with TerminalInput; CloseStream ends the session.
func (c *Containers) Terminal(id string, cols, rows uint) (string, error) {
	b := c.b
	ctx, cancel := b.opCtx(15 * time.Second)
	defer cancel()
	size := client.ConsoleSize{Height: max(rows, 1), Width: max(cols, 1)}
	ex, err := b.docker.ExecCreate(ctx, id, client.ExecCreateOptions{TTY: true, AttachStdin: true, AttachStdout: true,
		AttachStderr: true, Cmd: shellCmd, ConsoleSize: size, Env: []string{"TERM=xterm-256color"}})
	if err != nil {
		return "", engineError("open a terminal in "+shortID(id), err)
	}
	att, err := b.docker.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true, ConsoleSize: size})
	if err != nil {
		return "", engineError("open a terminal in "+shortID(id), err)
	}
	// A resize is only applied to a running process: wait until the shell
	// runs (it is at once, normally) so the window's first resize is not lost.
	for i := 0; i < 100; i++ {
		if in, err := b.docker.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil || in.Running {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sid, sctx, st := b.streams.add(b.ctx)
	event := EventTerm + ":" + sid
	b.streams.setIO(st, func(p []byte) error { _, err := att.Conn.Write(p); return err }, func(cols, rows uint) {
		rctx, cancel := b.opCtx(5 * time.Second)
		defer cancel()
		b.docker.ExecResize(rctx, ex.ID, client.ExecResizeOptions{Height: rows, Width: cols})
	})
	go func() { <-sctx.Done(); att.Close() }()
	go func() {
		defer b.streams.done(sid)
		buf := make([]byte, 32<<10)
		for {
			n, err := att.Reader.Read(buf)
			if n > 0 {
				b.emit.Emit(event, TermOutput{Data: base64.StdEncoding.EncodeToString(buf[:n])})
			}
			if err != nil {
				break
			}
		}
		b.emit.Emit(event, TermOutput{Exited: true})
	}()
	return sid, nil
}

// TerminalInput sends keystrokes (as xterm.js reports them) to a terminal.
func (c *Containers) TerminalInput(streamID, data string) error {
	input, _ := c.b.streams.io(streamID)
	if input == nil {
		return fmt.Errorf("terminal %s is closed", streamID)
	}
	return input([]byte(data))
}

// TerminalResize tells the shell the terminal's new size.
func (c *Containers) TerminalResize(streamID string, cols, rows uint) error {
	_, resize := c.b.streams.io(streamID)
	if resize == nil {
		return fmt.Errorf("terminal %s is closed", streamID)
	}
	resize(max(cols, 1), max(rows, 1))
	return nil
}
