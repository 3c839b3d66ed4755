package transport

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// NewGuestLanes takes the open ports, by lane number.
func NewGuestLanes(ports map[int]*os.File) *GuestLanes {
	g := &GuestLanes{lanes: map[int]*guestLane{}}
	for i, f := range ports {
		// The descriptor is used with splice, blocking: the Go poller
		// must not have it.
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			continue
		}
		unix.SetNonblock(fd, false)
		unix.CloseOnExec(fd)
		g.lanes[i] = &guestLane{fd: fd}
		f.Close()
	}
	return g
}

// spliceFrom moves what src (a TCP connection) sends to the lane until
// its end of file, through a pipe (no copy through user space), and
// returns how many bytes went.
func (l *guestLane) spliceFrom(src net.Conn) (int64, error) {
	sc, ok := src.(syscall.Conn)
	if !ok {
		return l.copyFrom(src)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return l.copyFrom(src)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return l.copyFrom(src)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20)
	var total int64
	for {
		var n int64
		var serr error
		err := rc.Read(func(fd uintptr) bool {
			n, serr = unix.Splice(int(fd), nil, p[1], nil, 1<<20, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		for left := n; left > 0; {
			w, err := unix.Splice(p[0], nil, l.fd, nil, int(left), unix.SPLICE_F_MOVE)
			if err != nil {
				// What is in the pipe is lost: the count says what went.
				return total, fmt.Errorf("lane: %w", err)
			}
			left -= w
			total += w
		}
	}
}

// copyFrom is spliceFrom for a connection without a descriptor.
func (l *guestLane) copyFrom(src io.Reader) (int64, error) {
	return io.Copy(fdWriter(l.fd), src)
}

type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(w), p[done:])
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}
