package transport

import (
	"io"
	"net"
	"sync"
)

// closeWriter is a connection that can end its sending half alone, as TCP,
// unix sockets and mux streams can; `docker attach` relies on it.
type closeWriter interface{ CloseWrite() error }

// Splice copies between a and b in both directions until both sides have
// finished, passing each end-of-stream on as a half-close, then closes both.
func Splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go pipe(a, b)
	go pipe(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// Forward accepts connections on l and relays each to a connection from
// dial (a driver's DialGuest on a guest port), until l is closed. A dial
// that fails closes the accepted connection; the error goes to onErr.
func Forward(l net.Listener, dial func() (net.Conn, error), onErr func(error)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			g, err := dial()
			if err != nil {
				c.Close()
				if onErr != nil {
					onErr(err)
				}
				return
			}
			Splice(c, g)
		}()
	}
}
