package desktop

import (
	"context"
	"strconv"
	"sync"
)

// streams tracks the long-lived operations the window started (log
// follows, stats, terminals, pulls, builds) so each can be cancelled by ID
// and all are ended when the window closes.
type streams struct {
	mu   sync.Mutex
	next int
	m    map[string]*stream
}

type stream struct {
	cancel context.CancelFunc
	input  func([]byte) error    // terminals: keystrokes
	resize func(cols, rows uint) // terminals: window size
}

func newStreams() *streams { return &streams{m: map[string]*stream{}} }

// add registers a new stream under a fresh ID and returns its context.
func (s *streams) add(parent context.Context) (string, context.Context, *stream) {
	ctx, cancel := context.WithCancel(parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	id := strconv.Itoa(s.next)
	st := &stream{cancel: cancel}
	s.m[id] = st
	return id, ctx, st
}

// setIO gives a terminal stream its input and resize functions.
func (s *streams) setIO(st *stream, input func([]byte) error, resize func(cols, rows uint)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.input, st.resize = input, resize
}

// io returns a running terminal's input and resize functions (nil if gone).
func (s *streams) io(id string) (func([]byte) error, func(cols, rows uint)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[id]
	if st == nil {
		return nil, nil
	}
	return st.input, st.resize
}

// done forgets a finished stream.
func (s *streams) done(id string) {
	s.mu.Lock()
	st := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if st != nil {
		st.cancel()
	}
}

// cancel ends the stream id; it reports whether it was running.
func (s *streams) cancel(id string) bool {
	s.mu.Lock()
	st := s.m[id]
	s.mu.Unlock()
	if st == nil {
		return false
	}
	st.cancel()
	return true
}

func (s *streams) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.cancel()
	}
}
