package container

import (
	"sync"
	"time"

	ctr "github.com/moby/moby/api/types/container"
)

// Restart back-off as dockerd's restart manager: 100 ms, doubled at each
// restart up to a minute, and reset once a run lasted 10 s or more.
const (
	backoffStart = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
)

// restartManager decides whether a container that exited is restarted and
// after how long. One lives as long as the container's record in memory;
// an agent start creates fresh ones, which is what lets "always" restart a
// manually stopped container on the next boot, as dockerd does.
type restartManager struct {
	mu        sync.Mutex
	policy    ctr.RestartPolicy
	count     int // restarts so far (the record's RestartCount)
	timeout   time.Duration
	cancelled bool
	cancel    chan struct{}
}

func newRestartManager(p ctr.RestartPolicy, count int) *restartManager {
	return &restartManager{policy: p, count: count, cancel: make(chan struct{})}
}

// shouldRestart reports whether to restart and the delay before doing so.
func (r *restartManager) shouldRestart(exitCode int, manuallyStopped bool, ran time.Duration) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.policy.IsNone() || r.cancelled {
		return false, 0
	}
	if ran >= backoffReset {
		r.timeout = 0
	}
	switch {
	case r.timeout == 0:
		r.timeout = backoffStart
	case r.timeout < backoffMax:
		r.timeout *= 2
	}
	if r.timeout > backoffMax {
		r.timeout = backoffMax
	}
	restart := false
	switch {
	case r.policy.IsAlways():
		restart = true
	case r.policy.IsUnlessStopped():
		restart = !manuallyStopped
	case r.policy.IsOnFailure():
		if max := r.policy.MaximumRetryCount; max == 0 || r.count < max {
			restart = exitCode != 0
		}
	}
	if !restart {
		return false, 0
	}
	r.count++
	return true, r.timeout
}

// stop cancels a pending restart and any later one (docker stop, rm, or
// engine shutdown).
func (r *restartManager) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.cancelled {
		r.cancelled = true
		close(r.cancel)
	}
}

// done is closed when the manager is cancelled.
func (r *restartManager) done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel
}
