// Package transport carries connections between host and guest. Plain
// addresses are URLs: unix:///path, tcp://host:port, vsock://CID:PORT
// (vsock://:PORT to listen on any CID). Where the host has no vsock, a
// virtio-serial port multiplexed with yamux carries the same guest ports
// (SerialMux on the host, GuestMux in the guest).
package transport

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mdlayher/vsock"
)

// Listen opens a listener for addr. Unix sockets are created mode 0600 in a
// directory that exists (created 0700 if missing); a stale socket file left
// by a crashed process is replaced.
func Listen(addr string) (net.Listener, error) {
	u, err := parse(addr)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "unix":
		return listenUnix(u.Path)
	case "tcp":
		return net.Listen("tcp", u.Host)
	case "vsock":
		cid, port, err := vsockAddr(u, true)
		if err != nil {
			return nil, err
		}
		if cid == anyCID {
			return vsock.Listen(port, nil)
		}
		return vsock.ListenContextID(cid, port, nil)
	}
	return nil, fmt.Errorf("listen %s: unsupported scheme %q", addr, u.Scheme)
}

// Dial connects to addr.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	u, err := parse(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	switch u.Scheme {
	case "unix":
		return d.DialContext(ctx, "unix", u.Path)
	case "tcp":
		return d.DialContext(ctx, "tcp", u.Host)
	case "vsock":
		cid, port, err := vsockAddr(u, false)
		if err != nil {
			return nil, err
		}
		return vsock.DialContext(ctx, cid, port, nil)
	}
	return nil, fmt.Errorf("dial %s: unsupported scheme %q", addr, u.Scheme)
}

func parse(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		return nil, fmt.Errorf("address %q: want scheme://…, e.g. unix:///run/berth/docker.sock", addr)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if u.Scheme == "unix" && u.Path == "" {
		return nil, fmt.Errorf("address %q: no socket path", addr)
	}
	return u, nil
}

const anyCID = ^uint32(0)

// hostCID is the host's vsock context ID, as its guests see it.
const hostCID = vsock.Host

// vsockPeer is the context ID of a vsock connection's other end.
func vsockPeer(c net.Conn) (uint32, bool) {
	a, ok := c.RemoteAddr().(*vsock.Addr)
	if !ok {
		return 0, false
	}
	return a.ContextID, true
}

// vsockAddr parses the CID:PORT of a vsock URL; an empty CID (listen only)
// means any.
func vsockAddr(u *url.URL, listen bool) (cid, port uint32, err error) {
	host, ps, err := net.SplitHostPort(u.Host)
	if err != nil {
		return 0, 0, fmt.Errorf("address %s: want vsock://CID:PORT: %w", u, err)
	}
	p, err := strconv.ParseUint(ps, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("address %s: bad port: %w", u, err)
	}
	if host == "" {
		if !listen {
			return 0, 0, fmt.Errorf("address %s: no context ID", u)
		}
		return anyCID, uint32(p), nil
	}
	c, err := strconv.ParseUint(host, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("address %s: bad context ID: %w", u, err)
	}
	return uint32(c), uint32(p), nil
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		// A live owner would answer; only a stale socket is removed.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving this socket", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	// The socket is created with the umask's mode, which never lets others
	// connect (connect needs write permission); narrow it to the owner.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}
