// Package events is the engine's event bus: every change to a container,
// image, network or volume is published here once, kept in a short history
// (so `docker events --since` works) and fanned out to subscribers such as
// the /events endpoint, the host agent's port forwarder and the desktop app.
package events

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/runtime/filters"
)

// Message is the Engine API's event record, used as is.
type Message = events.Message

const historySize = 1024

// Bus is safe for concurrent use. A slow subscriber never blocks publishers:
// its buffer fills, and then it is dropped (its channel closed).
type Bus struct {
	mu      sync.Mutex
	history []Message
	subs    map[*sub]struct{}
	now     func() time.Time
}

type sub struct {
	ch     chan Message
	filter func(Message) bool
}

func New() *Bus { return &Bus{subs: map[*sub]struct{}{}, now: time.Now} }

// Publish records an event with the current time and delivers it.
func (b *Bus) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	t := b.now()
	m := Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: t.Unix(), TimeNano: t.UnixNano()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.history) == historySize {
		copy(b.history, b.history[1:])
		b.history = b.history[:historySize-1]
	}
	b.history = append(b.history, m)
	for s := range b.subs {
		if s.filter != nil && !s.filter(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Subscribe returns the past events at or after since (zero: none) that
// pass filter, and a channel of future ones. Call cancel to unsubscribe;
// the channel is closed then, or earlier if the subscriber fell behind.
func (b *Bus) Subscribe(since time.Time, filter func(Message) bool) (past []Message, ch <-chan Message, cancel func()) {
	s := &sub{ch: make(chan Message, 256), filter: filter}
	b.mu.Lock()
	if !since.IsZero() {
		for _, m := range b.history {
			if m.TimeNano >= since.UnixNano() && (filter == nil || filter(m)) {
				past = append(past, m)
			}
		}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return past, s.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Filter builds a predicate from the /events filters: type, event (action),
// container, image, network, volume, label, scope.
func Filter(f filters.Args) (func(Message) bool, error) {
	if err := f.Validate("type", "event", "container", "image", "network", "volume", "label", "scope", "daemon", "builder"); err != nil {
		return nil, err
	}
	return func(m Message) bool {
		action := string(m.Action)
		// "exec_start: sh -c …" and "health_status: healthy" match their prefix.
		base, _, _ := strings.Cut(action, ":")
		if !f.Match("type", string(m.Type)) || !f.MatchAny("event", action, base) {
			return false
		}
		name := m.Actor.Attributes["name"]
		switch m.Type {
		case events.ContainerEventType:
			if !f.MatchAny("container", m.Actor.ID, name) && !f.MatchPrefix("container", m.Actor.ID) {
				return false
			}
			if f.Has("image") && !f.MatchAny("image", m.Actor.Attributes["image"]) {
				return false
			}
		case events.ImageEventType:
			if !f.MatchAny("image", m.Actor.ID, name) && !f.MatchPrefix("image", m.Actor.ID) {
				return false
			}
		case events.NetworkEventType:
			if !f.MatchAny("network", m.Actor.ID, name) {
				return false
			}
		case events.VolumeEventType:
			if !f.MatchAny("volume", m.Actor.ID) {
				return false
			}
		}
		if f.Has("container") && m.Type != events.ContainerEventType && !f.Has("type") {
			return false
		}
		return f.MatchLabels("label", m.Actor.Attributes)
	}, nil
}
