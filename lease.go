package durable

import (
	"sync"
	"sync/atomic"
	"time"
)

// The engine's own view of its lease (with a journal.Coordinator). The
// store decides when a lease has expired, by its clock; the engine knows
// a lower bound of that: the time it sent its last successful heartbeat
// (or registration) plus the lease's timeout, on its own monotonic clock.
// A step starts only before that bound. A process that was stopped
// (SIGSTOP, a long GC pause, a suspended VM) past its lease wakes up
// with its runs in memory and its timers due: without this check it
// would start a step of a run another engine has claimed meanwhile, and
// the step would execute in two processes at once (the fence only keeps
// its outcome from being recorded). With it, the step waits for the next
// heartbeat, which tells the engine its lease had expired; the engine
// then drops the runs it lost (resync) before any of their steps start.

// localLease is the engine's view of its lease.
type localLease struct {
	base  time.Time    // monotonic origin of until
	until atomic.Int64 // valid before base+until (ns): read on every step, without a lock

	mu      sync.Mutex
	renewed chan struct{} // closed and replaced on each renewal
	kick    chan struct{} // asks the heartbeat loop to beat now
}

func (l *localLease) init() {
	l.base = time.Now()
	l.renewed = make(chan struct{})
	l.kick = make(chan struct{}, 1)
}

// renew records a heartbeat (or registration) sent at sent that the store
// accepted: the lease holds until sent+timeout at least.
func (l *localLease) renew(sent time.Time, timeout time.Duration) {
	l.mu.Lock()
	if u := int64(sent.Add(timeout).Sub(l.base)); u > l.until.Load() {
		l.until.Store(u)
	}
	close(l.renewed)
	l.renewed = make(chan struct{})
	l.mu.Unlock()
}

// valid reports whether the lease surely holds now, and if not, a channel
// closed at the next renewal.
func (l *localLease) valid() (bool, <-chan struct{}) {
	if int64(time.Since(l.base)) < l.until.Load() {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if int64(time.Since(l.base)) < l.until.Load() {
		return true, nil // renewed meanwhile
	}
	return false, l.renewed
}

// awaitLease returns once this engine's lease surely holds, so that x may
// start a step; false if x was aborted meanwhile (its run was lost to
// another engine, or the engine closes). Without a coordinator, or with
// leases that do not expire, it returns true at once.
func (x *executor) awaitLease() bool {
	e := x.e
	if e.coord == nil || e.co.lease.Timeout <= 0 {
		return true
	}
	for {
		ok, renewed := e.co.own.valid()
		if ok {
			return true
		}
		select {
		case e.co.own.kick <- struct{}{}:
		default:
		}
		select {
		case <-renewed:
			// A renewal after an expiry ran resync first: a lost run is
			// aborted by now.
			if x.aborted() {
				return false
			}
		case <-x.abort:
			return false
		case <-e.ctx.Done():
			return false
		}
	}
}
