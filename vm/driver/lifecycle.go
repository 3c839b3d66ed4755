package driver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Lifecycle is the part of a machine's state that every driver keeps the
// same way: Stopped → Starting → Running → Stopping → Stopped, why the
// last run ended, and since when it runs. A driver holds one (its zero
// value is Stopped) and keeps its own fields (process, sockets) under its
// own lock.
//
// Lifecycle has a lock of its own, always taken after the driver's: a
// driver may call it with its lock held, and it never calls back. The
// driver calls End and BeginStop holding its lock, with the change to its
// own fields they go with (the process is gone, a stop is under way), so
// that its Status, which reads both under its lock, never sees one
// without the other.
type Lifecycle struct {
	mu       sync.Mutex
	state    State // "" is Stopped
	run      uint64
	stopping bool // a stop was asked for since this run began
	exit     string
	started  time.Time
}

// A Run is one Start, from BeginStart: the late steps of a start act only
// on their own run, never on a later one.
type Run struct {
	n    uint64
	name string // the machine's, for errors
}

func (l *Lifecycle) stateLocked() State {
	if l.state == "" {
		return Stopped
	}
	return l.state
}

// BeginStart moves a stopped machine to Starting and forgets the last
// run's exit; a machine in any other state cannot start.
func (l *Lifecycle) BeginStart(name string) (Run, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.stateLocked(); st != Stopped {
		return Run{}, fmt.Errorf("start %s: machine is %s", name, st)
	}
	l.run++
	l.state, l.exit, l.stopping = Starting, "", false
	return Run{n: l.run, name: name}, nil
}

// EndStart ends Start: deferred with Start's named error, it does nothing
// if Start succeeded; if it failed, it stops what was started
// (stop(ctx, true): the driver's forced Stop), leaves the machine Stopped
// and says which machine did not start.
func (l *Lifecycle) EndStart(r Run, errp *error, stop func(ctx context.Context, force bool) error) {
	if *errp == nil {
		return
	}
	stop(context.Background(), true)
	l.mu.Lock()
	if l.run == r.n {
		l.state = Stopped
	}
	l.mu.Unlock()
	*errp = fmt.Errorf("start %s: %w", r.name, *errp)
}

// SetRunning moves r's machine from Starting to Running, the last step of
// a successful Start. A machine that ended meanwhile (or was asked to
// stop) stays as it is.
func (l *Lifecycle) SetRunning(r Run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run == r.n && l.state == Starting {
		l.state, l.started = Running, time.Now()
	}
}

// UntilEnd returns ctx, cancelled with the machine's exit as the cause
// once ended is closed (after End): the steps of a start that wait on a
// booted machine give up as soon as it dies.
func (l *Lifecycle) UntilEnd(ctx context.Context, ended <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-ended:
			cancel(errors.New(l.Status().Exit))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// StopTimeout bounds a graceful Stop whose context has no deadline: the
// guest's shutdown (engine, trim, sync) gets this long before the machine
// is stopped at once.
const StopTimeout = 60 * time.Second

// StopContext is ctx bounded by StopTimeout unless it has a deadline.
func StopContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, StopTimeout)
}

// BeginStop marks a stop that was asked for: the machine is Stopping, and
// its end is no crash.
func (l *Lifecycle) BeginStop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.stopping = Stopping, true
}

// AbortStop undoes BeginStop for a machine that runs on (a suspend that
// failed).
func (l *Lifecycle) AbortStop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == Stopping {
		l.state, l.stopping = Running, false
	}
}

// End records that the machine's run is over: it is Stopped, and why
// becomes its exit unless a stop was asked for (or why is empty). It
// reports whether it did, that is whether the machine died.
func (l *Lifecycle) End(why string) (died bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	died = !l.stopping && why != ""
	if died {
		l.exit = why
	}
	l.state, l.started = Stopped, time.Time{}
	return died
}

// StopAsked reports whether a stop was asked for since the run began (a
// run that ends otherwise died), for a driver that must act on a death
// before End.
func (l *Lifecycle) StopAsked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopping
}

// State is the machine's state now.
func (l *Lifecycle) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stateLocked()
}

// Status is the machine's state, start time and exit; the driver adds
// what it knows (Accel, PID).
func (l *Lifecycle) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{State: l.stateLocked(), StartedAt: l.started, Exit: l.exit}
}
