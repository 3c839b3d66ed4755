//go:build linux

package engineapi

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// maxQuietHeld bounds what `build -q` holds back (sent only if the build
// fails): the latest messages are kept, the oldest dropped.
const maxQuietHeld = 1 << 20

// quietLog holds a quiet build's messages (one per Write, as the stream
// writers frame them), at most max bytes of them.
type quietLog struct {
	mu      sync.Mutex
	max     int
	msgs    [][]byte
	size    int
	dropped int
}

func (q *quietLog) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, append([]byte(nil), p...))
	q.size += len(p)
	for q.size > q.max && len(q.msgs) > 1 {
		q.size -= len(q.msgs[0])
		q.dropped += len(q.msgs[0])
		q.msgs[0] = nil
		q.msgs = q.msgs[1:]
	}
	return len(p), nil
}

// writeTo sends what was held, after a note of what was dropped.
func (q *quietLog) writeTo(w io.Writer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dropped > 0 {
		b, _ := json.Marshal(jsonstream.Message{Stream: fmt.Sprintf("[%d bytes of earlier build output dropped]\n", q.dropped)})
		w.Write(append(b, '\r', '\n'))
	}
	for _, m := range q.msgs {
		w.Write(m)
	}
}

func (q *quietLog) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs) == 0
}
