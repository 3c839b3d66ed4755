package engineapi

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types"
)

// Stream content types (API ≥ 1.42): multiplexed without a TTY, raw with one.
const (
	rawStream         = string(types.MediaTypeRawStream)
	multiplexedStream = string(types.MediaTypeMultiplexedStream)
)

// muxWriter frames each write for one stream of a multiplexed stream: an
// 8-byte header (stream type, three zero bytes, big-endian length) then the
// payload, which is what stdcopy.StdCopy in the docker CLI reads. Writers of
// one connection share mu, so frames never interleave.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream stdcopy.StdType
}

func (m muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [8]byte
	hdr[0] = byte(m.stream)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.w.Write(hdr[:]); err != nil {
		return 0, err
	}
	return m.w.Write(p)
}

// outputWriters returns the stdout and stderr writers for a client stream:
// raw (both to w) with a TTY, multiplexed otherwise.
func outputWriters(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	mu := &sync.Mutex{}
	if tty {
		lw := lockedWriter{mu: mu, w: w}
		return lw, lw
	}
	return muxWriter{mu: mu, w: w, stream: stdcopy.Stdout}, muxWriter{mu: mu, w: w, stream: stdcopy.Stderr}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// jsonTo encodes v onto an already started response.
func jsonTo(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
