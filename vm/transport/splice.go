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
