package control

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// shells serves /shell for m, keeping each open terminal for resizes.
type shells struct {
	m     Shells
	mu    sync.Mutex
	tt    map[string]*os.File // shell ID → its pty master
	exits map[string]exit     // shell ID → how it ended, kept a while
}

type exit struct {
	code int
	at   time.Time
}

// exitKeep is how long a shell's exit code can be asked for.
const exitKeep = time.Minute

func registerShell(mux *http.ServeMux, m Shells) {
	s := &shells{m: m, tt: map[string]*os.File{}, exits: map[string]exit{}}
	mux.HandleFunc("POST /shell", s.open)
	mux.HandleFunc("POST /shell/{id}/resize", s.resize)
	mux.HandleFunc("GET /shell/{id}/exit", s.exit)
}

// termName is compiled on first use: this package is linked into the
// binary every container's init re-executes, which runs package initializers.
var termName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._+-]{1,64}$`) })

// size reads rows and cols (a terminal of 0×0 is refused: shells draw
// nothing sensible on it).
func size(q map[string][]string) (rows, cols uint16, err error) {
	get := func(k string, def int) (uint16, error) {
		v := ""
		if len(q[k]) > 0 {
			v = q[k][0]
		}
		if v == "" {
			return uint16(def), nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return 0, fmt.Errorf("%s=%q: want 1-10000", k, v)
		}
		return uint16(n), nil
	}
	if rows, err = get("rows", 24); err != nil {
		return
	}
	cols, err = get("cols", 80)
	return
}

func (s *shells) open(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rows, cols, err := size(q)
	if err != nil {
		replyErr(w, http.StatusBadRequest, err)
		return
	}
	term := q.Get("term")
	if term == "" {
		term = "xterm-256color"
	}
	if !termName().MatchString(term) {
		replyErr(w, http.StatusBadRequest, fmt.Errorf("term=%q: not a terminal name", term))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		replyErr(w, http.StatusInternalServerError, errors.New("connection cannot be hijacked"))
		return
	}

	// A terminal (pty) for a client that is one; plain pipes (a socket
	// pair) for one that is not: no echo, no \r\n, no prompt banner.
	plain := q.Get("plain") == "1"
	var local, remote *os.File
	if plain {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			replyErr(w, http.StatusInternalServerError, fmt.Errorf("socket pair: %w", err))
			return
		}
		// This end non-blocking, so the runtime polls it and Close ends a
		// pending read; the shell's end stays blocking.
		unix.SetNonblock(fds[0], true)
		local, remote = os.NewFile(uintptr(fds[0]), "shell"), os.NewFile(uintptr(fds[1]), "shell-stdio")
	} else {
		ptmx, tty, err := pty.Open()
		if err != nil {
			replyErr(w, http.StatusInternalServerError, fmt.Errorf("open a terminal: %w", err))
			return
		}
		pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols})
		local, remote = ptmx, tty
	}
	env := []string{"TERM=" + term, "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/sh",
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", `PS1=\u@\h:\w\$ `}
	exited, err := s.m.StartShell(q["cmd"], env, remote, !plain)
	remote.Close()
	if err != nil {
		local.Close()
		replyErr(w, http.StatusInternalServerError, err)
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		local.Close()
		return
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	if !plain {
		s.tt[id] = local
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.tt, id)
		s.mu.Unlock()
		local.Close() // a shell still on the terminal gets SIGHUP
		conn.Close()
	}()
	fmt.Fprintf(brw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n%s: %s\r\n\r\n", ShellHeader, id)
	if err := brw.Flush(); err != nil {
		return
	}
	// Input: what the client sent after the request (in brw), then the
	// connection. Its end is passed on: a socket is half-closed; a pty
	// cannot be, so Ctrl-D is typed, which a shell reading a line takes as
	// end of file.
	go func() {
		if _, err := io.Copy(local, brw); err == nil {
			if plain {
				if rc, err := local.SyscallConn(); err == nil {
					rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_WR) })
				}
			} else {
				local.Write([]byte{4})
			}
		}
	}()
	out := make(chan struct{})
	go func() {
		// Ends once no process holds the other end (EIO from a pty).
		io.Copy(conn, local)
		close(out)
	}()
	code := -1
	select {
	case <-out:
		select { // the terminal closes just before the exit is reaped
		case code = <-exited:
		case <-time.After(2 * time.Second):
		}
	case code = <-exited:
		// The shell is gone; output it wrote is drained unless a child it
		// left behind keeps the terminal open.
		select {
		case <-out:
		case <-time.After(time.Second):
		}
	}
	if code >= 0 {
		s.mu.Lock()
		for id, e := range s.exits {
			if time.Since(e.at) > exitKeep {
				delete(s.exits, id)
			}
		}
		s.exits[id] = exit{code: code, at: time.Now()}
		s.mu.Unlock()
	}
}

// exit answers how shell id ended: {"exitCode": N}, or 404 while it runs
// (or when it is long gone).
func (s *shells) exit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	e, ok := s.exits[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		replyErr(w, http.StatusNotFound, fmt.Errorf("no exit code for shell %q", r.PathValue("id")))
		return
	}
	reply(w, http.StatusOK, ShellExit{ExitCode: e.code})
}

func (s *shells) resize(w http.ResponseWriter, r *http.Request) {
	rows, cols, err := size(r.URL.Query())
	if err != nil {
		replyErr(w, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	ptmx := s.tt[r.PathValue("id")]
	s.mu.Unlock()
	if ptmx == nil {
		replyErr(w, http.StatusNotFound, fmt.Errorf("no shell %q", r.PathValue("id")))
		return
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		replyErr(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
