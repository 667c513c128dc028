package durable

import (
	"context"
	"sync"
	"time"
)

// Retention: the engine deletes finished runs (and the journals of epochs
// that ended with ContinueAsNew) once they are older than
// Config.Retention: at Open, and then every tenth of it (at least every
// minute, at most every hour) while runs finished within it. Each deletion is a small transaction of its own, so it
// never holds up step commits for long; bbolt reuses the freed pages, so a
// journal with steady traffic stops growing. `durable compact` shrinks the
// file itself. A run id can be started again once its run was deleted.

const purgeBatch = 100

// retention tracks what the retention loop needs: when a run last
// finished, and a kick when the loop is idle. The loop sleeps only while
// something may expire: once nothing finished within the retention period
// it sets no timer at all, so a synctest bubble with nothing else to do
// still reports its deadlock instead of spinning through virtual time.
type retention struct {
	mu         sync.Mutex
	lastFinish time.Time
	kick       chan struct{}
}

// noteFinish tells the retention loop that a run finished (or an epoch
// ended) at t.
func (e *Engine) noteFinish(t time.Time) {
	r := &e.retention
	r.mu.Lock()
	if t.After(r.lastFinish) {
		r.lastFinish = t
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) retentionLoop() {
	keep := e.cfg.Retention
	if keep < 0 {
		return
	}
	interval := min(max(keep/10, time.Minute), time.Hour)
	r := &e.retention
	// At Open: purge now, and once more a retention period later for runs
	// that finished just before Open.
	next, catchUp := e.clock.Now(), e.clock.Now().Add(keep)
	for {
		var c <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			c, stop = e.clock.TimerAt(next)
		}
		select {
		case <-c:
		case <-r.kick:
			stop()
			r.mu.Lock()
			due := r.lastFinish.Add(keep)
			r.mu.Unlock()
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		case <-e.ctx.Done():
			stop()
			return
		}
		now := e.clock.Now()
		// Due: what finished keep ago or earlier. The timer is set for
		// lastFinish+keep exactly, and a clock that then reads exactly that
		// (a synctest bubble, a test clock) must find that run due: else it
		// is neither deleted nor recent, and the loop sleeps for good.
		cutoff := now.Add(-keep + 1)
		if _, err := e.Purge(e.ctx, cutoff); err != nil && e.ctx.Err() == nil {
			e.log.Warn("durable: retention: cannot delete finished runs", "err", err)
		}
		r.mu.Lock()
		recent := !r.lastFinish.Before(cutoff) // finished since: not deleted yet
		r.mu.Unlock()
		switch {
		case recent:
			next = now.Add(interval)
		case !catchUp.IsZero() && catchUp.After(now):
			next = catchUp
		default:
			next = time.Time{}
		}
		if !catchUp.IsZero() && !catchUp.After(now) {
			catchUp = time.Time{}
		}
	}
}

// Purge deletes the runs that finished before before, and the journals of
// epochs that ended before it, in transactions of 100 items, and returns
// how many items it deleted. The engine does this on its own for
// Config.Retention; call Purge to do it now.
func (e *Engine) Purge(ctx context.Context, before time.Time) (int, error) {
	if e == nil {
		return 0, errNilEngine
	}
	total := 0
	for {
		n, err := e.store.Purge(ctx, before, purgeBatch)
		total += n
		if err != nil {
			return total, errorf("durable: purge: %w", err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}
