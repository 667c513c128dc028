package durable

import (
	"context"
	"errors"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Every write of the engine to its journal goes through Engine.commit
// (or executor.commit, for a run's executor), which stamps the batch with
// the engine clock's time.
//
// The engine's own commits pass context.Background(), not the context of
// the call that caused them: a commit canceled midway may or may not have
// happened (the store cannot tell which), and the engine must know what
// its journal holds. Commits made for a caller who waits on the outcome
// (Cancel, Send, a Start's create) pass the caller's ctx: the caller gets
// the error and knows the outcome is unknown.

// commit writes b durably (see the note above on ctx).
func (e *Engine) commit(ctx context.Context, b *journal.Batch) error {
	e.stampNow(b)
	return e.store.Commit(ctx, b)
}

// stampNow sets b.Now to the engine clock's time if b writes a time and
// has none: the clock is read only then.
func (e *Engine) stampNow(b *journal.Batch) {
	if b.Now.IsZero() && b.NeedsNow() {
		b.Now = e.clock.Now()
	}
}

// updateRun commits one update of a run, under fence f (the zero Fence
// for a run this engine does not own), and returns the time it recorded.
func (e *Engine) updateRun(ctx context.Context, u journal.Update, f journal.Fence) (time.Time, error) {
	b := &journal.Batch{Update: []journal.Update{u}, Fence: f}
	err := e.commit(ctx, b)
	return b.Now, err
}

// commitEnd commits u, the update that ends run row, with the run's
// outcome res (its Flags and Data) as the child record in the parent's
// journal if the run has a parent. A parent that is gone, finished or
// holds the result already does not keep the run from ending: u is then
// committed alone. It returns the time recorded and the record that went
// to the parent, if one did.
func (e *Engine) commitEnd(ctx context.Context, row *journal.Run, u journal.Update, res journal.Record, f journal.Fence) (time.Time, *journal.Record, error) {
	b := &journal.Batch{Update: []journal.Update{u}, Fence: f}
	e.stampNow(b)
	var toParent *journal.Record
	if row.Parent != "" {
		res.Pos, res.Seq, res.Kind, res.Name, res.Time = row.ParentPos, 1, kindChild, row.Workflow, b.Now
		toParent = &res
		b.Append = []journal.Append{{RunID: row.Parent, Epoch: row.ParentEpoch, Record: res}}
	}
	err := e.store.Commit(ctx, b)
	if err != nil && toParent != nil && !errors.Is(err, journal.ErrNotOwner) && (errors.Is(err, journal.ErrFinished) || errors.Is(err, journal.ErrNotFound) || errors.Is(err, journal.ErrConflict)) {
		b.Append, toParent = nil, nil
		err = e.store.Commit(ctx, b)
	}
	return b.Now, toParent, err
}

// appendOf is the operation that appends r to this run's journal, in its
// current epoch.
func (x *executor) appendOf(r journal.Record) journal.Append {
	return journal.Append{RunID: x.id, Epoch: x.row.Epoch, Record: r}
}

// fill sets b to append recs to this run's journal, in its current epoch,
// and to set its wake time (the timer index) to *wake if wake is not nil.
// It keeps b's slices for reuse.
func (x *executor) fill(b *journal.Batch, wake *time.Time, recs ...journal.Record) {
	*b = journal.Batch{Append: b.Append[:0], Update: b.Update[:0]}
	for _, r := range recs {
		b.Append = append(b.Append, x.appendOf(r))
	}
	if wake != nil {
		b.Update = append(b.Update, journal.Update{RunID: x.id, SetWake: true, Wake: *wake})
	}
}

// commitFailure classifies a failed commit.
func (x *executor) commitFailure(err error) (abortReason, error) {
	switch {
	case errors.Is(err, journal.ErrClosed) || x.e.isClosed():
		return abortClose, err
	case errors.Is(err, journal.ErrNotOwner): // before ErrConflict, which it matches
		return abortLost, err
	case errors.Is(err, journal.ErrFinished), errors.Is(err, journal.ErrNotFound):
		return abortGone, err
	case errors.Is(err, journal.ErrConflict), errors.Is(err, journal.ErrCorrupt), errors.Is(err, journal.ErrInvalid):
		return abortPark, errorf("durable: run %s: %w", clip.Q(x.id), err)
	}
	return abortSuspend, err
}

// commit writes b durably. On failure it stops the executor and reports
// false; workflow-goroutine callers then exit, workers return.
func (x *executor) commit(b *journal.Batch) bool {
	if x.aborted() {
		return false
	}
	if x.replay != nil {
		x.stop(abortReplayEnd, nil) // a replay check writes nothing
		return false
	}
	x.e.stampNow(b)
	stampRecords(b, x.e.clock)
	b.Fence = x.run.fence()
	if err := x.e.store.Commit(context.Background(), b); err != nil {
		x.stop(x.commitFailure(err))
		return false
	}
	if len(b.Append) > 0 {
		x.idle.Store(false) // an append clears the mark
	}
	for i := range b.Update {
		if b.Update[i].Idle {
			x.idle.Store(true)
		}
	}
	return true
}

// idleUpdate returns the update that marks the run idle until wake (or
// its deadline, if earlier), and whether the run may be marked: nothing
// of it executes or waits to, besides the workflow goroutine's wait that
// follows. An idle run is not loaded (at Open, or claimed) before its
// wake time or a message; see journal.Run.Idle.
func (x *executor) idleUpdate(wake time.Time) (journal.Update, bool) {
	x.mu.Lock()
	busy := x.workers > 0 || len(x.ready) > 0 || len(x.waiting) > 0
	x.mu.Unlock()
	busy = busy || len(x.deferred) > 0
	if busy {
		return journal.Update{}, false
	}
	if d := x.row.Deadline; !d.IsZero() && (wake.IsZero() || d.Before(wake)) {
		wake = d
	}
	return journal.Update{RunID: x.id, Idle: true, SetWake: true, Wake: wake}, true
}

// write commits records for this run from the workflow goroutine, with a
// new wake time (the timer index) if wake is not nil, and exits the
// goroutine if the commit fails.
func (x *executor) write(wake *time.Time, recs ...journal.Record) {
	b := &x.batch
	x.fill(b, wake, recs...)
	if wake != nil && !wake.IsZero() {
		// A wake time here is always followed by a wait for it (a sleep,
		// a receive's timeout, a retry's backoff): mark the run idle.
		if u, ok := x.idleUpdate(*wake); ok {
			b.Update[len(b.Update)-1] = u
		}
	}
	if !x.commit(b) {
		x.exit()
	}
}
