package durable

import (
	"context"
	"errors"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Cancellation: how a request (Engine.Cancel, a parent's cancellation, a
// run deadline) reaches a live run, how the workflow sees it at one
// journal position (delivered), and how it is recorded so that replay
// delivers it at the same position again. See "Cancellation" in doc.go.

// Cancel asks run id to stop. The request is journaled before Cancel
// returns, and the run's children are canceled too (except detached ones).
// The run's steps see their contexts canceled (a future's step then ends
// with the cancellation), Sleep, Receive, AwaitAny and AwaitAll return an
// error matching [ErrCanceled], and the run ends
// [StatusCanceled] unless the workflow handles the cancellation (see
// [WithoutCancel] for cleanup). Canceling a canceled run does nothing; a
// run that already completed or failed gives an error matching
// [ErrFinished]; an unknown id, [ErrNotFound]. A parked run (which could
// not act on the request: its code does not fit its journal) ends
// canceled at once, without running its code; its parent gets the
// cancellation as its result and its children are canceled. A running
// run whose workflow is not registered here keeps the request and acts
// on it when resumed.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	if e == nil {
		return errNilEngine
	}
	if err := checkRunID(id); err != nil {
		return err
	}
	if e.isClosed() {
		return ErrClosed
	}
	if _, err := e.updateRun(ctx, journal.Update{RunID: id, CancelRequested: true}, journal.Fence{}); err != nil {
		if errors.Is(err, journal.ErrFinished) {
			if r, gerr := e.store.GetRun(ctx, id); gerr == nil && r.Status == journal.StatusCanceled {
				return nil
			}
		}
		return errorf("durable: cancel run %s: %w", clip.Q(id), err)
	}
	if lr := e.liveRunOf(id); lr != nil {
		if !lr.parking.Load() {
			lr.requestCancel(ErrCanceled)
			if !lr.parking.Load() {
				return nil
			}
			// It began to park meanwhile: its code will not act on the
			// request. (park, having set parking, checks for a request
			// too: one of the two sees the other.)
		}
		// Its parked status is committed, its live run not yet gone: a
		// request to it would reach no executor. Wait, then end it as a
		// parked run.
		select {
		case <-lr.finished:
		case <-ctx.Done():
			return errorf("durable: cancel run %s: %w", clip.Q(id), ctx.Err())
		}
	}
	return e.cancelParked(ctx, id)
}

// cancelParked ends run id canceled if it is parked: its code cannot run
// to act on the request (it would park again), so Cancel finishes it as
// the workflow would have, without running its code: the run ends
// [StatusCanceled], its parent (if any) gets the cancellation as the
// child's result, and its children are canceled (except detached ones).
func (e *Engine) cancelParked(ctx context.Context, id string) error {
	r, err := e.store.GetRun(ctx, id)
	if err == nil && r.Status == journal.StatusRunning && e.liveRunOf(id) == nil {
		e.wakeOrLoad(id) // an idle run not loaded here: it acts on the request once loaded
		return nil
	}
	if err != nil || r.Status != journal.StatusParked || e.liveRunOf(id) != nil {
		return nil // not parked (or resumed meanwhile): the request stands
	}
	cause := errorf("durable: run %s was canceled while parked: %w", clip.Q(id), ErrCanceled)
	u := journal.Update{RunID: id, Status: journal.StatusCanceled, Err: encodeError(cause)}
	now, toParent, err := e.commitEnd(ctx, &r, u, journal.Record{Flags: flagDone | flagError, Data: u.Err}, journal.Fence{})
	if errors.Is(err, journal.ErrFinished) {
		return nil // ended meanwhile (by park and Cancel both calling this)
	}
	if err != nil {
		return errorf("durable: cancel parked run %s: %w", clip.Q(id), err)
	}
	e.noteFinish(now)
	if toParent != nil {
		e.deliverToParent(r.Parent, r.ParentEpoch, *toParent)
	}
	if recs, err := e.store.Records(ctx, id); err == nil {
		for _, rec := range recs {
			if rec.Kind == kindChild && rec.Seq == 0 && rec.Flags&flagDetached == 0 && len(rec.Data) > 0 {
				if err := e.Cancel(ctx, string(rec.Data)); err != nil && !isFinished(err) && !isNotFound(err) {
					e.log.Warn("durable: cannot cancel child run", "run_id", id, "child", string(rec.Data), "err", err)
				}
			}
		}
	}
	return nil
}

// deadline cancels run id because its deadline passed.
func (e *Engine) deadline(id string) {
	if lr := e.liveRunOf(id); lr != nil {
		lr.requestCancel(ErrDeadlineExceeded)
	}
}

// WithoutCancel returns a Context of the same run that cancellation does
// not reach: durable operations on it run even after the run was canceled
// (or its deadline passed), and its steps' contexts are canceled only when
// the engine closes. Use it for cleanup and compensation after
// cancellation:
//
//	if errors.Is(err, durable.ErrCanceled) {
//		_, _ = durable.Step(durable.WithoutCancel(ctx), "release", release)
//		return err
//	}
func WithoutCancel(ctx Context) Context {
	return &wfContext{x: ctx.executor(), noCancel: true}
}

// requestCancel records in memory that the run must stop with err
// (ErrCanceled or ErrDeadlineExceeded): running steps see their contexts
// canceled and waits return. The durable record of the request is the
// caller's business.
func (lr *liveRun) requestCancel(err error) {
	if !lr.cancel.CompareAndSwap(nil, &err) {
		return
	}
	lr.mu.Lock()
	x := lr.x
	lr.mu.Unlock()
	if x != nil {
		x.cancelLive()
		x.cancelChildren()
	}
	lr.wake()
}

// cancelRequested returns the pending cancel error, or nil.
func (lr *liveRun) cancelRequested() error {
	if p := lr.cancel.Load(); p != nil {
		return *p
	}
	return nil
}

// pendingCancel returns the cancel error an operation on c must deliver now
// (cancellation was requested but not yet delivered), or nil.
func (x *executor) pendingCancel(c Context) error {
	if c.ignoresCancel() || x.cancelErr != nil {
		return nil
	}
	return x.run.cancelRequested()
}

// deliverCancel makes cancellation visible to the workflow: Done closes and
// later operations on a cancelable Context return err. Workflow goroutine
// only; called at the position where it happened, live or on replay.
func (x *executor) deliverCancel(err error) {
	if x.cancelErr != nil {
		return
	}
	if err == nil {
		err = ErrCanceled
	}
	x.cancelErr = err
	close(x.doneCh)
	x.closeWatched()
}

// deliverLive records, at position o, that cancellation reached the
// workflow there, delivers it, and returns the record.
func (x *executor) deliverLive(o *op, kind uint8, name string, cause error) journal.Record {
	r := o.record(kind, name, flagDone|flagError|cancelFlags(cause))
	r.Data = encodeError(cause)
	x.write(nil, r)
	x.deliverCancel(recordedCancel(r.Flags))
	return r
}

// replayed applies what a replayed outcome says beyond its value:
// cancellation delivered at that point.
func (x *executor) replayed(done journal.Record) {
	if done.Flags&flagCancel != 0 {
		x.deliverCancel(recordedCancel(done.Flags))
	}
}

// cancelFlags are the flags that record the delivery of cause.
func cancelFlags(cause error) uint8 {
	if errors.Is(cause, ErrDeadlineExceeded) {
		return flagCancel | flagDeadline
	}
	return flagCancel
}

// recordedCancel is the cancellation a record's flags say was delivered.
func recordedCancel(flags uint8) error {
	if flags&flagDeadline != 0 {
		return ErrDeadlineExceeded
	}
	return ErrCanceled
}

// cancelRequested returns the cancellation the step must end with, or nil:
// the run's (a step on a WithoutCancel context ignores it), or the
// workflow's own (its future's Cancel, or its cancel scope's).
func (t *stepExec) cancelRequested() error {
	if !t.ctx.ignoresCancel() {
		if err := t.x.run.cancelRequested(); err != nil {
			return err
		}
	}
	if f := t.future; f != nil && f.canceled.Load() {
		return errOpCanceled
	}
	if t.ctx.scope().isCanceled() {
		return errOpCanceled
	}
	return nil
}

// deliverFlags are the flags with which a step that ends by cause records
// it: a step the workflow goroutine runs delivers the run's cancellation to
// the workflow at its position; a future's does not (the workflow is
// elsewhere), nor does the workflow's own cancel of an operation.
func (t *stepExec) deliverFlags(cause error) uint8 {
	if t.future != nil || cause == errOpCanceled {
		return 0
	}
	return cancelFlags(cause)
}

// cancelLive cancels the contexts of this executor's cancelable steps.
func (x *executor) cancelLive() {
	x.liveMu.Lock()
	defer x.liveMu.Unlock()
	if x.liveCancel != nil {
		x.liveCancel()
	}
	x.liveDone = true
}

// liveContext returns the parent of cancelable steps' contexts, making it
// on first use (canceled already if cancelLive came first).
func (x *executor) liveContext() context.Context {
	x.liveMu.Lock()
	defer x.liveMu.Unlock()
	if x.live == nil {
		x.live, x.liveCancel = context.WithCancel(x.e.ctx)
		if x.liveDone {
			x.liveCancel()
		}
	}
	return x.live
}

// trackChild remembers a child that the run's cancellation must reach,
// and passes on a cancellation already requested.
func (x *executor) trackChild(id string, detached bool) {
	if detached {
		return
	}
	x.mu.Lock()
	if x.children == nil {
		x.children = map[string]bool{}
	}
	x.children[id] = true
	x.mu.Unlock()
	if x.run.cancelRequested() != nil {
		x.cancelChildren()
	}
}

// cancelChildren asks every tracked child to cancel.
func (x *executor) cancelChildren() {
	x.mu.Lock()
	ids := make([]string, 0, len(x.children))
	for id := range x.children {
		ids = append(ids, id)
	}
	x.mu.Unlock()
	x.cancelRuns(ids)
}
