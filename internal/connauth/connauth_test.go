package connauth

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestListenServesOnlyTokenHolders(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(raw, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.WriteString(c, "served\n"); c.Close() }()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	read := func(c net.Conn) string {
		b, _ := io.ReadAll(c)
		return string(b)
	}
	// A connection that says nothing holds no slot: others are served.
	idle := dial()
	defer idle.Close()

	for _, bad := range []string{"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("x", 80), strings.Repeat("0", 64) + "\n", tok[:63] + "\n"} {
		c := dial()
		io.WriteString(c, bad)
		c.(*net.TCPConn).CloseWrite()
		if got := read(c); got != "" {
			t.Errorf("without the token (%.20q…) the connection got %q", bad, got)
		}
		c.Close()
	}
	c := dial()
	if err := Send(c, tok); err != nil {
		t.Fatal(err)
	}
	if got := read(c); got != "served\n" {
		t.Fatalf("with the token: %q", got)
	}
	if !Authenticated(l) || Authenticated(raw) {
		t.Fatal("Authenticated")
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}

func TestReadToken(t *testing.T) {
	tok, _ := NewToken()
	r := strings.NewReader(tok + "\nrest")
	got, err := ReadToken(r)
	if err != nil || got != tok {
		t.Fatalf("%q %v", got, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Fatalf("read past the token: %q left", rest)
	}
	for _, bad := range []string{"", "abc\n", strings.Repeat("z", 64) + "\n", strings.Repeat("a", 200)} {
		if _, err := ReadToken(strings.NewReader(bad)); err == nil {
			t.Errorf("%.20q accepted", bad)
		}
	}
}
