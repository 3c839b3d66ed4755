package events

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/runtime/filters"
)

func TestHistoryAndLive(t *testing.T) {
	b := New()
	start := time.Now()
	b.Publish(events.ContainerEventType, events.ActionCreate, "abc", map[string]string{"name": "web"})
	f, _ := filters.Parse(`{"container":["web"],"event":["create","start"]}`)
	pred, err := Filter(f)
	if err != nil {
		t.Fatal(err)
	}
	past, ch, cancel := b.Subscribe(start, pred)
	defer cancel()
	if len(past) != 1 || past[0].Actor.ID != "abc" {
		t.Fatalf("past = %+v", past)
	}
	b.Publish(events.ContainerEventType, events.ActionStart, "zzz", map[string]string{"name": "other"})
	b.Publish(events.ContainerEventType, events.ActionStart, "abc", map[string]string{"name": "web"})
	select {
	case m := <-ch:
		if m.Actor.ID != "abc" || m.Action != events.ActionStart {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := New()
	_, ch, cancel := b.Subscribe(time.Time{}, nil)
	defer cancel()
	for i := 0; i < 1000; i++ {
		b.Publish(events.ImageEventType, events.ActionPull, "x", nil)
	}
	n := 0
	for range ch {
		n++
	}
	if n != 256 {
		t.Fatalf("buffered %d events before drop, want 256", n)
	}
}
