//go:build linux

package control

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
)

// shellMachine starts real processes on the terminal, as PID 1 does.
type shellMachine struct{ machine }

func (m *shellMachine) StartShell(argv, env []string, tty *os.File, terminal bool) (<-chan int, error) {
	return testkit.StartShell(argv, env, tty, terminal)
}

// readUntil reads r until it has seen want.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	br := bufio.NewReader(r)
	for !strings.Contains(got.String(), want) {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("waiting for %q: %v; got %q", want, err, got.String())
		}
		got.WriteByte(b)
	}
	return got.String()
}

func TestShellOnATerminal(t *testing.T) {
	c := client(t, &shellMachine{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, id, err := c.Shell(ctx, ShellOptions{Rows: 30, Cols: 100, Term: "vt100"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	if id == "" {
		t.Fatal("no shell ID in the answer")
	}
	io.WriteString(conn, "stty size; echo term=$TERM; tty\n")
	out := readUntil(t, conn, "/dev/pts/")
	if !strings.Contains(out, "30 100") || !strings.Contains(out, "term=vt100") {
		t.Fatalf("terminal: %q", out)
	}
	if err := c.ResizeShell(ctx, id, 40, 120); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "stty size\n")
	readUntil(t, conn, "40 120")
	// The end of input is end of file for the shell: it exits and the
	// server closes the connection.
	conn.(interface{ CloseWrite() error }).CloseWrite()
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("after end of input: %v", err)
	}
	if err := c.ResizeShell(ctx, id, 40, 120); err == nil || !strings.Contains(err.Error(), "no shell") {
		t.Fatalf("resize of a closed shell: %v", err)
	}
}

func TestShellCommandAndBadRequests(t *testing.T) {
	c := client(t, &shellMachine{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, id, err := c.Shell(ctx, ShellOptions{Cmd: []string{"/bin/sh", "-c", "read x; echo got $x; exit 7"}, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(conn, "one two\n")
	out, _ := io.ReadAll(conn)
	if string(out) != "got one two\n" { // no echo, no \r
		t.Fatalf("plain command output %q", out)
	}
	if code, err := c.ShellExitCode(ctx, id); err != nil || code != 7 {
		t.Fatalf("exit code %d, %v", code, err)
	}
	if _, err := c.ShellExitCode(ctx, "nope"); err == nil {
		t.Fatal("exit code of an unknown shell")
	}
	for _, o := range []ShellOptions{{Term: "x;rm"}, {Cmd: []string{"/no/such/program"}}} {
		if _, _, err := c.Shell(ctx, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	// A machine without shells has no /shell.
	if _, _, err := client(t, &machine{}).Shell(ctx, ShellOptions{}); err == nil {
		t.Error("shell on a machine without shells")
	}
}
