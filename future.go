package durable

import (
	"context"
	"sync/atomic"

	"github.com/durable-go/durable/journal"
)

// Future is the pending result of a step started with [Go] (or a child
// started with [StartChild]). Its zero value is not usable. Get may be
// called any number of times, by the workflow goroutine of the run that
// made the future.
type Future[T any] struct {
	st     *futureState
	decode func(x *executor, st *futureState) (T, error)
}

// futureState is a future's untyped part: done closes once rec holds the
// outcome. poll, if set, looks for an outcome delivered from elsewhere (a
// child's result).
type futureState struct {
	done chan struct{}
	rec  journal.Record
	live any // the result itself, when the step ran here and its type is plain
	poll func()
	// What a wait for it waits for, for Config.Observer.
	kind string
	name string
	pos  uint32 // its journal position, if x is set

	// For Future.Cancel (cancel_scope.go): x is the run's executor once
	// the operation took its position; step and child what to cancel.
	x           *executor
	step        *stepExec
	child       string
	cancelAsked bool               // Cancel was called; workflow goroutine
	canceled    atomic.Bool        // Cancel journaled; read by the step's worker
	stopAttempt context.CancelFunc // cancels the running attempt's context; x.mu
}

func newFutureState() *futureState { return &futureState{done: make(chan struct{})} }

// errorRecord is an unrecorded outcome: err, as a future resolves with it.
func errorRecord(err error) journal.Record {
	return journal.Record{Flags: flagDone | flagError, Data: encodeError(err)}
}

func (f *futureState) resolve(r journal.Record) {
	f.rec = r
	close(f.done)
}

// check reports whether the outcome is there, polling for it first.
func (f *futureState) check() bool {
	if !f.ready() && f.poll != nil {
		f.poll()
	}
	return f.ready()
}

func (f *futureState) ready() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// Go starts fn as a durable step that runs concurrently with the workflow
// and returns its future. The step takes its journal position when Go is
// called, so the order in which steps finish never changes replay. All
// step options apply. At most Config.MaxStepsPerRun steps of one run
// execute at once; the rest wait in a queue, not in goroutines.
//
// A step whose result is recorded is not run again: on replay its future
// is resolved at once.
func Go[T any](ctx Context, name string, fn func(context.Context) (T, error), opts ...StepOption) *Future[T] {
	x := ctx.executor()
	f := &Future[T]{st: newFutureState(), decode: decodeFuture[T]}
	if err := x.enter(); err != nil {
		f.st.resolve(errorRecord(err))
		return f
	}
	defer x.leave()
	if err := checkStepName(name); err != nil {
		f.st.resolve(errorRecord(err))
		return f
	}
	o, rec, settled := x.begin(ctx, kindStep, name)
	f.st.x, f.st.pos = x, o.pos
	ctx.scope().markAsync()
	if settled {
		if x.e.obs != nil {
			x.obsReplayedStep(name, &o, rec)
		}
		f.st.resolve(rec)
		return f
	}
	if x.replay != nil {
		return f // a replay check executes no step; waiting for it ends the check
	}
	f.st.kind, f.st.name = WaitStep, name
	t := x.newStepExec(ctx, o, name, opts)
	t.fn = typedStep[T](fn)
	t.future = f.st
	f.st.step = t
	if x.replaying() {
		// Later operations are journaled: let the replay reach them
		// first, a cancel of this step among them (see cancel_scope.go).
		x.deferred = append(x.deferred, t)
		return f
	}
	x.schedule(t)
	return f
}

// scheduleDeferred schedules the steps Go started while replaying.
// Workflow goroutine: at its first operation after the replay, and before
// it waits.
func (x *executor) scheduleDeferred() {
	if len(x.deferred) == 0 {
		return
	}
	x.mu.Lock()
	x.ready = append(x.ready, x.deferred...)
	for range x.deferred {
		x.startWorkerLocked()
	}
	x.mu.Unlock()
	clear(x.deferred)
	x.deferred = x.deferred[:0]
}

// decodeFuture is a step future's result: the live value if there is one,
// else the recorded outcome decoded.
func decodeFuture[T any](x *executor, st *futureState) (T, error) {
	if v, ok := st.live.(T); ok {
		return v, nil
	}
	return decodeOutcome[T](x, st.rec)
}

// Get waits for the step (or child) to finish and returns its result,
// like [Step]. ctx must be the Context of the run that called Go (or
// WithoutCancel of it). Get takes no journal position and does not return
// early on the run's cancellation: a step future resolves soon anyway
// (its step's context is canceled, and it ends with the cancellation), and
// a child is canceled with its parent unless it is [Detached]. To stop
// waiting for a detached child when the run is canceled, wait with
// [AwaitAny] first. To stop the step or child itself, see [Future.Cancel]
// and [WithCancel].
func (f *Future[T]) Get(ctx Context) (T, error) {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		var zero T
		return zero, err
	}
	defer x.leave()
	if !f.st.check() {
		x.waitFor(f.st.kind, f.st.name, f.st.pos)
		x.wait(f.st.check)
	}
	return f.decode(x, f.st)
}

// Ready reports whether the result is available, without waiting.
func (f *Future[T]) Ready() bool { return f.st.check() }

// schedule queues t and starts a worker if the run has fewer than
// Config.MaxStepsPerRun.
func (x *executor) schedule(t *stepExec) {
	x.mu.Lock()
	x.ready = append(x.ready, t)
	x.startWorkerLocked()
	x.mu.Unlock()
}

// startWorkerLocked starts a futures worker if there is work, room, and
// the executor is not stopping. x.mu is held.
func (x *executor) startWorkerLocked() {
	if len(x.ready) == 0 || x.workers >= x.e.cfg.MaxStepsPerRun || x.noWorkers {
		return
	}
	x.workers++
	x.wg.Add(1)
	go x.worker()
}

// worker runs ready step executions one attempt at a time. A step
// execution that must wait for a retry is set aside (no goroutine, no
// concurrency slot) until a wake of the run finds it due.
func (x *executor) worker() {
	defer x.wg.Done()
	for {
		x.mu.Lock()
		if len(x.ready) == 0 || x.aborted() {
			x.workers--
			x.mu.Unlock()
			return
		}
		t := x.ready[0]
		x.ready[0] = nil
		x.ready = x.ready[1:]
		x.mu.Unlock()

		done := t.runOnce()
		switch {
		case x.aborted() && !t.isDone:
		case done:
			t.future.live = t.live
			t.future.resolve(t.done)
			x.run.wake()
		default:
			x.mu.Lock()
			x.waiting = append(x.waiting, t)
			x.mu.Unlock()
			x.e.wakes.add(x.id, t.nextAt, false)
		}
	}
}

// requeue moves waiting step executions that are due (or canceled) back
// to the ready queue. The live run calls it on every wake.
func (x *executor) requeue() {
	now := x.now()
	x.mu.Lock()
	defer x.mu.Unlock()
	kept := x.waiting[:0]
	for _, t := range x.waiting {
		if !now.Before(t.nextAt) || t.cancelRequested() != nil {
			x.ready = append(x.ready, t)
		} else {
			kept = append(kept, t)
		}
	}
	clear(x.waiting[len(kept):])
	x.waiting = kept
	for len(x.ready) > 0 && x.workers < x.e.cfg.MaxStepsPerRun && !x.noWorkers {
		x.startWorkerLocked()
	}
}
