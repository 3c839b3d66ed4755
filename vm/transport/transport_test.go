package transport

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUnixSocketMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run", "docker.sock")
	l, err := Listen("unix://" + p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("socket mode %o, want 600", got)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), "unix://"+p)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := Listen("unix://" + p); err == nil {
		t.Fatal("second listener on a live socket should fail")
	}
}

func TestBadAddresses(t *testing.T) {
	for _, a := range []string{"/no/scheme", "unix://", "ftp://x"} {
		if _, err := Listen(a); err == nil {
			t.Errorf("%q accepted", a)
		}
	}
}
