package desktop

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// watchEngine follows the engine's /events and republishes the list an
// event touches (debounced, so a burst of events costs one list call).
// When the engine goes away it reconnects with backoff, or at once when
// kicked (the machine was started).
func (b *Backend) watchEngine(ctx context.Context) {
	deb := newDebouncer(60*time.Millisecond, func(kind string) { b.publishList(ctx, kind) })
	defer deb.stop()
	backoff := 500 * time.Millisecond
	up := false
	for ctx.Err() == nil {
		sub, cancel := context.WithCancel(ctx)
		_, err := b.docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		if err == nil {
			// Ping first: it negotiates the API version once, before the
			// streaming request. Then subscribe, then list, so a change
			// made while listing causes one more refresh.
			res := b.docker.Events(sub, client.EventsListOptions{Filters: client.Filters{}.Add("type",
				string(events.ContainerEventType), string(events.ImageEventType), string(events.VolumeEventType))})
			backoff = 500 * time.Millisecond
			up = true
			for _, k := range []string{EventContainers, EventImages, EventVolumes} {
				deb.now(k)
			}
			b.refreshMachine(ctx)
			b.followEvents(ctx, res, deb)
		} else {
			b.log.Debug("engine not answering", "host", b.dockerHost, "err", err)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if up {
			up = false
			b.refreshMachine(ctx)
			for _, k := range []string{EventContainers, EventImages, EventVolumes} {
				b.emit.Emit(k, []struct{}{}) // the engine went away: nothing is listed
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		case <-time.After(backoff):
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

func (b *Backend) followEvents(ctx context.Context, res client.EventsResult, deb *debouncer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-res.Err:
			return
		case m := <-res.Messages:
			switch m.Type {
			case events.ContainerEventType:
				if strings.HasPrefix(string(m.Action), "exec_") {
					continue // exec sessions ("exec_start: sh") do not change the list
				}
				deb.touch(EventContainers)
				if m.Action == events.ActionDestroy {
					deb.touch(EventVolumes) // anonymous volumes may go with it
				}
			case events.ImageEventType:
				deb.touch(EventImages)
			case events.VolumeEventType:
				deb.touch(EventVolumes)
			}
		}
	}
}

func (b *Backend) kickEngine() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// publishList lists one kind and emits it to the window.
func (b *Backend) publishList(ctx context.Context, kind string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v any
	var err error
	switch kind {
	case EventContainers:
		v, err = b.listContainers(ctx)
	case EventImages:
		v, err = b.listImages(ctx)
	case EventVolumes:
		v, err = b.listVolumes(ctx)
	}
	if err != nil {
		b.log.Debug("refresh list", "kind", kind, "err", err)
		return
	}
	b.emit.Emit(kind, v)
}

// debouncer runs fn(kind) once per burst of touches of kind.
type debouncer struct {
	mu     sync.Mutex
	delay  time.Duration
	fn     func(string)
	timers map[string]*time.Timer
}

func newDebouncer(d time.Duration, fn func(string)) *debouncer {
	return &debouncer{delay: d, fn: fn, timers: map[string]*time.Timer{}}
}

func (d *debouncer) touch(kind string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers == nil {
		return
	}
	if t := d.timers[kind]; t != nil {
		t.Reset(d.delay)
		return
	}
	d.timers[kind] = time.AfterFunc(d.delay, func() { d.fn(kind) })
}

func (d *debouncer) now(kind string) { d.fn(kind) }

func (d *debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.timers {
		t.Stop()
	}
	d.timers = nil
}
