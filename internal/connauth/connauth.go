// Package connauth authenticates the connections of a listener that other
// local users can reach, such as the WSL engine's TCP port, which WSL relays
// to Windows' loopback: each connection must open with a per-boot token, in
// a line of its own, before any byte of the API behind it is read. The
// token lives in the memory of the user's host agent and reaches the engine
// on its standard input, never in argv, the environment or a file.
package connauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// tokenBytes is the token's entropy; it travels hex-encoded.
const tokenBytes = 32

// HandshakeTimeout bounds how long a connection may take to present the
// token before it is closed.
const HandshakeTimeout = 10 * time.Second

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("connection token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Check reports whether s is a well-formed token.
func Check(s string) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != tokenBytes {
		return fmt.Errorf("connection token: want %d hex digits", 2*tokenBytes)
	}
	return nil
}

// ReadToken reads a token from its own line of r (the engine's stdin),
// byte by byte so nothing after it is consumed.
func ReadToken(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) <= 2*tokenBytes {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("read connection token: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	tok := string(line)
	return tok, Check(tok)
}

// Send presents token on a fresh connection.
func Send(c net.Conn, token string) error {
	if _, err := io.WriteString(c, token+"\n"); err != nil {
		return fmt.Errorf("present connection token: %w", err)
	}
	return nil
}

// Listen wraps l so that Accept returns only connections that opened with
// token; the others are closed without a byte of answer.
func Listen(l net.Listener, token string) (net.Listener, error) {
	if err := Check(token); err != nil {
		return nil, err
	}
	al := &listener{Listener: l, want: []byte(token + "\n"), conns: make(chan net.Conn), done: make(chan struct{})}
	go al.acceptLoop()
	return al, nil
}

type listener struct {
	net.Listener
	want  []byte
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // the underlying Accept's error, once it fails
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		go l.handshake(c)
	}
}

func (l *listener) handshake(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(HandshakeTimeout))
	got := make([]byte, len(l.want))
	if _, err := io.ReadFull(c, got); err != nil || subtle.ConstantTimeCompare(got, l.want) != 1 {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next authenticated connection.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// Authenticated reports whether l checks a token on every connection.
func Authenticated(l net.Listener) bool {
	_, ok := l.(*listener)
	return ok
}
