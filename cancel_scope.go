package durable

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Cancel scopes: canceling part of a workflow (one future, one timer, the
// operations begun under a Context made by WithCancel) while the run goes
// on. See "Cancel scopes" in doc.go.
//
// Determinism. Only workflow code cancels a scope, on the workflow
// goroutine, so the point where it happens is the same on every replay;
// what is not the same is what the canceled operations had done by then (a
// step may have finished a moment before, a timer may have fired). So:
//
//   - A cancel that can reach something still running is journaled as an
//     operation of its own (record kind kindCancel, named for its target,
//     its Time the moment of the cancel): cancel of a scope under which an
//     operation that outlives its call began (Go, StartChild, NewTimer),
//     and every Future.Cancel and Timer.Cancel. A scope under which only
//     operations that return before the workflow goes on ran (Step, Sleep,
//     Receive, ...) has nothing to cancel but its future operations, which
//     the code decides: its cancel takes no position, so `defer cancel()`
//     costs nothing then.
//   - What a canceled step or child did is its own outcome, journaled at its
//     own position whichever came first; a timer is canceled if the
//     journaled time of the cancel is before the time it fires.
//   - On replay, steps started with Go that have no outcome yet are not
//     scheduled until the replay is over (executor.deferred): by then a
//     journaled cancel of them has been replayed, so a step canceled before
//     a crash ends canceled after it without running again.
//   - Children are canceled through Engine.Cancel (journaled in the child)
//     after the cancel is journaled here; a crash in between is repaired by
//     the replay of the cancel, which asks again (canceling a canceled or
//     finished run does nothing).

// kindCancel is the record kind of a cancel (record.go lists the kinds):
// Name is what was canceled, "scope N" (the Nth WithCancel of the
// run's epoch, counted again on every replay) or "position N" (Future.Cancel, Timer.Cancel), Time when,
// Flags flagDone. Journals written before it existed hold none and replay
// unchanged; older engines park a run that holds one (their code has no
// cancel there).
const kindCancel uint8 = 12

// errOpCanceled is what an operation canceled by the workflow itself (a
// scope, Future.Cancel, Timer.Cancel) ends with. It matches ErrCanceled
// and context.Canceled.
var errOpCanceled error = &sentinel{msg: "durable: operation canceled by the workflow", parent: ErrCanceled}

// WithCancel returns a Context of the same run and a function that cancels
// it, like context.WithCancel and Temporal's workflow.WithCancel. Calling
// cancel (on the workflow goroutine) cancels what was begun under the
// Context, or under Contexts made from it, without canceling the run:
//
//   - steps started with [Go] see their contexts canceled and end with an
//     error matching [ErrCanceled] (a step that returns a value anyway keeps
//     it); steps not yet started are not run;
//   - child runs started with [StartChild] are canceled (their own
//     [Engine.Cancel]: they end [StatusCanceled] unless they handle it, and
//     their futures return a [*ChildError] matching ErrCanceled), Detached
//     ones too: the code asked for it;
//   - timers made with [NewTimer] that have not fired are canceled: an
//     [AwaitAny] over one sees it ready and [Timer.Err] reports it;
//   - durable operations called on the Context afterwards (Step, Sleep,
//     Receive, AwaitAny, ...) return an error matching ErrCanceled at once,
//     and its Done channel is closed.
//
// Canceling the parent (a scope, or the run itself) cancels the scope too;
// canceling the scope again, or after what it covers finished, does
// nothing more. A cancel that can reach something still running takes a
// journal position (see "Cancel scopes" in the package docs); call cancel
// on the workflow goroutine only, as any durable operation. A scope made
// from [WithoutCancel] is not canceled by the run's cancellation, only by
// its own cancel. As with context.WithCancel, a scope that is never
// canceled holds a little memory until the run's workflow goroutine ends
// (the engine's cache evicts it, or the run finishes): cancel scopes made
// in a loop when done with them.
func WithCancel(ctx Context) (Context, context.CancelFunc) {
	x := ctx.executor()
	s := &cancelScope{x: x, parent: ctx.scope(), noCancel: ctx.ignoresCancel()}
	c := &wfContext{x: x, noCancel: s.noCancel, cs: s}
	if err := x.enter(); err != nil {
		x.misused(err)
		return c, func() {} // a stale Context: nothing will run under it
	}
	x.scopes++
	s.id = x.scopes
	x.leave()
	return c, s.cancel
}

// A cancelScope is what WithCancel makes: a set of operations that one
// call cancels. Its fields are the workflow goroutine's, except canceled
// (read by step workers) and the context (made by whoever runs a step
// under it first).
type cancelScope struct {
	x        *executor
	parent   *cancelScope
	id       uint32 // the Nth WithCancel of the epoch, from 1
	noCancel bool   // made under WithoutCancel: the run's cancellation does not reach it
	// async: an operation that outlives its call (Go, StartChild, NewTimer)
	// began under the scope or one made from it, so canceling it is
	// journaled.
	async    bool
	canceled atomic.Bool   // cancel was called (not an ancestor's)
	at       time.Time     // when, as journaled; set before canceled
	done     chan struct{} // made by Done; closed once canceled

	mu      sync.Mutex // guards ctx, stop and stopped
	ctx     context.Context
	stop    context.CancelFunc
	stopped bool // canceled before ctx was made
}

// isCanceled reports whether s or a scope it was made from was canceled.
// Any goroutine.
func (s *cancelScope) isCanceled() bool {
	for ; s != nil; s = s.parent {
		if s.canceled.Load() {
			return true
		}
	}
	return false
}

// canceledAt returns when s was canceled (its own cancel or an
// ancestor's, the earliest), and whether it was.
func (s *cancelScope) canceledAt() (at time.Time, ok bool) {
	for ; s != nil; s = s.parent {
		if s.canceled.Load() && (!ok || s.at.Before(at)) {
			at, ok = s.at, true
		}
	}
	return at, ok
}

// covers reports whether canceling s cancels what runs under t.
func (s *cancelScope) covers(t *cancelScope) bool {
	for ; t != nil; t = t.parent {
		if t == s {
			return true
		}
	}
	return false
}

// isDone reports whether a Context of s is done: s was canceled, or the
// run's cancellation reached the workflow and s does not ignore it.
// Workflow goroutine.
func (s *cancelScope) isDone() bool {
	return s.isCanceled() || !s.noCancel && s.x.cancelErr != nil
}

// markAsync records that an operation that outlives its call began under
// s: canceling s, or a scope it was made from, must be journaled.
func (s *cancelScope) markAsync() {
	for ; s != nil && !s.async; s = s.parent {
		s.async = true
	}
}

// context returns the parent of the contexts of s's steps, making it on
// first use: a child of the parent scope's, or of the run's (the engine's
// under WithoutCancel).
func (s *cancelScope) context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		var parent context.Context
		switch {
		case s.parent != nil:
			parent = s.parent.context()
		case s.noCancel:
			parent = s.x.e.ctx
		default:
			parent = s.x.liveContext()
		}
		s.ctx, s.stop = context.WithCancel(parent)
		if s.stopped {
			s.stop()
		}
	}
	return s.ctx
}

// stopContext cancels the contexts of s's steps (and those of the scopes
// made from it, which descend from it).
func (s *cancelScope) stopContext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.stop != nil {
		s.stop()
	}
}

// doneChan is Done of a Context of s.
func (s *cancelScope) doneChan() <-chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
		if s.isDone() {
			close(s.done)
		} else {
			s.x.watched = append(s.x.watched, s)
		}
	}
	return s.done
}

// cancel is the function WithCancel returns.
func (s *cancelScope) cancel() {
	x := s.x
	if err := x.enter(); err != nil {
		x.misused(err)
		return
	}
	defer x.leave()
	if s.isCanceled() {
		return // by this cancel before, or an ancestor's: the code says so on every replay
	}
	at := journalTime(x.now())
	if s.async {
		at = x.journalCancel("scope " + strconv.FormatUint(uint64(s.id), 10))
	}
	s.at = at
	s.canceled.Store(true)
	s.stopContext()
	var ids []string
	kept := x.scopedKids[:0]
	for _, k := range x.scopedKids {
		switch {
		case k.st.ready(): // finished: forget it
		case s.covers(k.scope):
			ids = append(ids, k.id)
		default:
			kept = append(kept, k)
		}
	}
	clear(x.scopedKids[len(kept):])
	x.scopedKids = kept
	x.cancelRuns(ids)
	x.closeWatched()
	x.requeue() // steps waiting for a retry end now
}

// journalCancel takes a journal position for a cancel of target and
// returns its time: recorded before a restart, or now, journaled.
// Workflow goroutine, inside enter.
func (x *executor) journalCancel(target string) time.Time {
	o := x.take(kindCancel, target)
	if o.full {
		x.park(x.tooLong())
	}
	if done, ok := o.done(); ok {
		return done.Time
	}
	r := o.record(kindCancel, target, flagDone)
	r.Time = journalTime(x.now())
	x.write(nil, r)
	crashPoint("cancel", x.id, int(o.pos))
	return r.Time
}

// closeWatched closes the Done channels of the scopes that are done now.
// Workflow goroutine.
func (x *executor) closeWatched() {
	kept := x.watched[:0]
	for _, s := range x.watched {
		if s.isDone() {
			close(s.done)
		} else {
			kept = append(kept, s)
		}
	}
	clear(x.watched[len(kept):])
	x.watched = kept
}

// scopedChild is a child run started under a cancel scope.
type scopedChild struct {
	id    string
	scope *cancelScope
	st    *futureState
}

// trackScoped remembers a child started under a scope, forgetting
// finished ones now and then.
func (x *executor) trackScoped(k scopedChild) {
	if n := len(x.scopedKids); n >= 64 && n == cap(x.scopedKids) {
		kept := x.scopedKids[:0]
		for _, k := range x.scopedKids {
			if !k.st.ready() {
				kept = append(kept, k)
			}
		}
		clear(x.scopedKids[len(kept):])
		x.scopedKids = kept
	}
	x.scopedKids = append(x.scopedKids, k)
}

// cancelRuns asks runs ids (children of this run) to cancel, in the
// background.
func (x *executor) cancelRuns(ids []string) {
	if len(ids) == 0 {
		return
	}
	e := x.e
	e.spawn(func() {
		for _, id := range ids {
			if err := e.Cancel(context.Background(), id); err != nil && !isFinished(err) && !isNotFound(err) {
				e.log.Warn("durable: cannot cancel child run", "run_id", x.id, "workflow", x.run.def.Name(), "child", id, "err", err)
			}
		}
	})
}

// Cancel cancels the step or child run of the future without canceling
// the run: a step's context is canceled and it ends with an error matching
// [ErrCanceled] (or keeps the value it returns anyway; a step not yet
// started does not run); a child run is canceled as by [Engine.Cancel],
// Detached or not. Get then returns what the step or child ended with:
// canceling one that already finished changes nothing. Use it for the
// futures that lost an [AwaitAny]. Cancel takes a journal position (the
// first time; later calls do nothing), so call it on the workflow
// goroutine, with the run's Context, like Get.
func (f *Future[T]) Cancel(ctx Context) {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return
	}
	defer x.leave()
	st := f.st
	if st.x != x || st.cancelAsked {
		return // refused before it took a position, or canceled already
	}
	st.cancelAsked = true
	x.journalCancel("position " + strconv.FormatUint(uint64(st.pos), 10))
	st.canceled.Store(true)
	if st.step != nil {
		x.mu.Lock()
		stop := st.stopAttempt
		x.mu.Unlock()
		if stop != nil {
			stop()
		}
		x.requeue()
	}
	if st.child != "" && !st.ready() {
		x.cancelRuns([]string{st.child})
	}
}

// setAttemptStop registers the function that cancels the running
// attempt's context, or nil when it ended; it reports false if the future
// was canceled already (the caller cancels the attempt).
func (f *futureState) setAttemptStop(x *executor, stop context.CancelFunc) bool {
	x.mu.Lock()
	f.stopAttempt = stop
	x.mu.Unlock()
	return stop == nil || !f.canceled.Load()
}

// Cancel cancels the timer unless it has fired: an [AwaitAny] over it
// then sees it ready at once, and Err reports the cancellation. It takes a
// journal position (the first time, unless the timer's scope canceled it
// already; later calls do nothing), which records when it happened: a
// timer that fired before that was not canceled.
func (t *Timer) Cancel(ctx Context) {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return
	}
	defer x.leave()
	if t.x != x || t.cancelAsked || t.canceled() {
		return
	}
	t.cancelAsked = true
	t.canceledAt = x.journalCancel("position " + strconv.FormatUint(uint64(t.pos), 10))
}

// Err returns an error matching [ErrCanceled] if the timer was canceled
// ([Timer.Cancel], or the cancel of the scope it was made under) before it
// fired, and nil otherwise.
func (t *Timer) Err() error {
	if t.canceled() {
		return errOpCanceled
	}
	return nil
}

// canceled reports whether the timer was canceled before it fired: made
// under a canceled scope, or canceled (itself or its scope) at a
// journaled time before its own.
func (t *Timer) canceled() bool {
	if t.early {
		return true
	}
	if t.cancelAsked && t.canceledAt.Before(t.at) {
		return true
	}
	at, ok := t.scope.canceledAt()
	return ok && at.Before(t.at)
}

// result implements AwaitAll's error of an item.
func (t *Timer) result(*executor) error { return t.Err() }
