package driver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func wantLife(t *testing.T, l *Lifecycle, state State, exit string) Status {
	t.Helper()
	st := l.Status()
	if st.State != state || st.Exit != exit {
		t.Fatalf("status %q exit %q, want %q exit %q", st.State, st.Exit, state, exit)
	}
	// A stopping machine still shows since when it ran.
	if state != Stopping && st.StartedAt.IsZero() != (state != Running) {
		t.Fatalf("%s with StartedAt %v", st.State, st.StartedAt)
	}
	return st
}

func TestLifecycleStartStop(t *testing.T) {
	var l Lifecycle
	wantLife(t, &l, Stopped, "")
	run, err := l.BeginStart("m")
	if err != nil {
		t.Fatal(err)
	}
	wantLife(t, &l, Starting, "")
	if _, err := l.BeginStart("m"); err == nil || err.Error() != "start m: machine is starting" {
		t.Fatalf("second start: %v", err)
	}
	l.SetRunning(run)
	wantLife(t, &l, Running, "")
	if _, err := l.BeginStart("m"); err == nil || err.Error() != "start m: machine is running" {
		t.Fatalf("start of a running machine: %v", err)
	}

	// A stop that was asked for is no death.
	l.BeginStop()
	wantLife(t, &l, Stopping, "")
	if l.End("exit status 0") {
		t.Error("a requested stop counted as a death")
	}
	wantLife(t, &l, Stopped, "")

	// An end nobody asked for is; the next start forgets it.
	run, _ = l.BeginStart("m")
	l.SetRunning(run)
	if !l.End("killed") {
		t.Error("a death not reported")
	}
	wantLife(t, &l, Stopped, "killed")
	if _, err := l.BeginStart("m"); err != nil {
		t.Fatal(err)
	}
	wantLife(t, &l, Starting, "")
}

func TestLifecycleEndStart(t *testing.T) {
	var l Lifecycle
	stops := 0
	stop := func(_ context.Context, force bool) error {
		if !force {
			t.Error("a failed start stopped gracefully")
		}
		stops++
		return nil
	}

	run, _ := l.BeginStart("m")
	var err error
	l.EndStart(run, &err, stop)
	if err != nil || stops != 0 {
		t.Fatalf("a successful start: err %v, %d stops", err, stops)
	}
	wantLife(t, &l, Starting, "")

	boom := errors.New("boom")
	err = boom
	l.EndStart(run, &err, stop)
	if err == nil || err.Error() != "start m: boom" || !errors.Is(err, boom) || stops != 1 {
		t.Fatalf("a failed start: err %v, %d stops", err, stops)
	}
	wantLife(t, &l, Stopped, "")
}

// A start whose machine died and was started again must not touch the
// new run when it finally fails or succeeds.
func TestLifecycleStaleRun(t *testing.T) {
	var l Lifecycle
	old, _ := l.BeginStart("m")
	l.End("died")
	cur, err := l.BeginStart("m")
	if err != nil {
		t.Fatal(err)
	}
	l.SetRunning(old)
	wantLife(t, &l, Starting, "")
	err = errors.New("late failure")
	l.EndStart(old, &err, func(context.Context, bool) error { return nil })
	wantLife(t, &l, Starting, "")
	l.SetRunning(cur)
	wantLife(t, &l, Running, "")
}

func TestLifecycleAbortStop(t *testing.T) {
	var l Lifecycle
	run, _ := l.BeginStart("m")
	l.SetRunning(run)
	l.BeginStop()
	if !l.StopAsked() {
		t.Error("StopAsked false after BeginStop")
	}
	l.AbortStop()
	wantLife(t, &l, Running, "")
	if l.StopAsked() {
		t.Error("StopAsked true after AbortStop")
	}
	if !l.End("the VM stopped") {
		t.Error("a death after an aborted stop not reported")
	}
	wantLife(t, &l, Stopped, "the VM stopped")
}

// Run with -race: every method may be called from any goroutine.
func TestLifecycleConcurrent(t *testing.T) {
	var l Lifecycle
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if run, err := l.BeginStart("m"); err == nil {
					l.SetRunning(run)
					l.BeginStop()
					l.End("")
				}
				l.Status()
			}
		}()
	}
	wg.Wait()
	wantLife(t, &l, Stopped, "")
}

func TestLifecycleUntilEnd(t *testing.T) {
	var l Lifecycle
	run, _ := l.BeginStart("m")
	l.SetRunning(run)
	ended := make(chan struct{})
	ctx, cancel := l.UntilEnd(context.Background(), ended)
	defer cancel()
	if ctx.Err() != nil {
		t.Fatal("cancelled before the machine ended")
	}
	l.End("qemu exited: signal: killed")
	close(ended)
	<-ctx.Done()
	if c := context.Cause(ctx); c == nil || c.Error() != "qemu exited: signal: killed" {
		t.Fatalf("cause %v, want the machine's exit", c)
	}

	ctx, cancel = l.UntilEnd(context.Background(), make(chan struct{}))
	cancel()
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatalf("cause after cancel: %v", context.Cause(ctx))
	}
}

func TestStopContext(t *testing.T) {
	ctx, cancel := StopContext(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < StopTimeout-time.Second || time.Until(dl) > StopTimeout {
		t.Fatalf("no deadline of its own: got %v %v, want in %v", dl, ok, StopTimeout)
	}
	want := time.Now().Add(time.Second)
	own, ocancel := context.WithDeadline(context.Background(), want)
	defer ocancel()
	ctx, cancel = StopContext(own)
	defer cancel()
	if dl, _ := ctx.Deadline(); !dl.Equal(want) {
		t.Fatalf("deadline %v, want the caller's %v", dl, want)
	}
}
