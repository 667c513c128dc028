package durable

import (
	"context"
	"time"

	"github.com/durable-go/durable/journal"
)

// Observer receives the engine's events, for traces and metrics (the
// otel module implements one on OpenTelemetry). Set it in
// Config.Observer. Implementations embed [BaseObserver], which does
// nothing for every event, and override the methods they need; so new
// events can be added without breaking them.
//
// Callbacks run on the engine's goroutines, synchronously: they must be
// quick and must not call the engine. They may be called concurrently
// (for different runs, and for the concurrent steps of one run). A
// callback that panics is recovered (the first panic is logged, once per
// engine); it never fails a run.
//
// The context.Context a run callback receives is the run's context: what
// RunStarted or RunResumed returned for this incarnation of the run (it
// carries the run's span, say). StepStarted receives it and returns the
// context of the step attempt, which the step function's context carries
// values from (its cancellation stays the engine's), and which
// StepFinished receives.
type Observer interface {
	// InjectRun is called before a run is created, by Start (ctx is
	// Start's context; not for a run that exists) and by StartChild (ctx
	// is the parent's run context). What it returns is journaled with the
	// run, and comes back as RunEvent.Meta in every event of the run, in
	// any process, after any crash: a trace context, say. Keys and values
	// should be short (at most 64 KiB in all).
	InjectRun(ctx context.Context, ev RunEvent) map[string]string

	// RunStarted: an incarnation of the run starts with nothing to replay
	// (a new run, or a new epoch after ContinueAsNew). ctx is
	// context.Background(); the context returned becomes the run's.
	RunStarted(ctx context.Context, ev RunEvent) context.Context
	// RunResumed: an incarnation starts that replays the run's journal
	// (ev.Records records up to position ev.Position): after a restart or
	// crash, in another process, or after an eviction (ev.Reason).
	RunResumed(ctx context.Context, ev RunEvent) context.Context
	// RunReplayed: the incarnation finished replaying, in ev.Replay, and
	// executes live from ev.Position on.
	RunReplayed(ctx context.Context, ev RunEvent)
	// RunFinished: the run ended: ev.Status is Completed, Failed or
	// Canceled, ev.Err the run's error.
	RunFinished(ctx context.Context, ev RunEvent)
	// RunParked: the run cannot go on with this code; ev.Err says why.
	// ctx is the run's context if an incarnation was running, else
	// context.Background().
	RunParked(ctx context.Context, ev RunEvent)
	// RunStopped: the incarnation ended without finishing the run; it
	// resumes later. ev.Reason is one of the Stop* constants.
	RunStopped(ctx context.Context, ev RunEvent)

	// StepStarted: an attempt of a step starts executing. The context
	// returned is the attempt's (see above); return ctx to add nothing.
	StepStarted(ctx context.Context, ev StepEvent) context.Context
	// StepFinished: an attempt returned (ev.Err, ev.Duration), or a step
	// was answered from the journal on replay (ev.Replayed; then no
	// StepStarted came before, and ctx is the run's context).
	StepFinished(ctx context.Context, ev StepEvent)
	// RetryScheduled: attempt ev.Attempt failed with ev.Err and the next
	// one is journaled for ev.NextAt.
	RetryScheduled(ctx context.Context, ev StepEvent)

	// WaitStarted: the workflow blocks (it sleeps, receives, waits for a
	// child, a future, AwaitAny or AwaitAll, or a retry's backoff); the
	// run is in the run cache meanwhile. WaitEnded follows, also when the
	// wait is abandoned (ev.Interrupted: evicted, or the engine closing).
	WaitStarted(ctx context.Context, ev WaitEvent)
	WaitEnded(ctx context.Context, ev WaitEvent)

	// Committed: the journal committed a write transaction. It is called
	// only if the store implements journal.CommitReporter (both of this
	// module's stores do).
	Committed(ev CommitEvent)

	base() // embed BaseObserver
}

// BaseObserver is an [Observer] that does nothing. Embed it in an
// observer and override the methods you need. Its zero value is ready.
type BaseObserver struct{}

var _ Observer = BaseObserver{}

// InjectRun implements [Observer]: it journals nothing.
func (BaseObserver) InjectRun(context.Context, RunEvent) map[string]string { return nil }

// RunStarted implements [Observer].
func (BaseObserver) RunStarted(ctx context.Context, _ RunEvent) context.Context { return ctx }

// RunResumed implements [Observer].
func (BaseObserver) RunResumed(ctx context.Context, _ RunEvent) context.Context { return ctx }

// RunReplayed implements [Observer].
func (BaseObserver) RunReplayed(context.Context, RunEvent) {}

// RunFinished implements [Observer].
func (BaseObserver) RunFinished(context.Context, RunEvent) {}

// RunParked implements [Observer].
func (BaseObserver) RunParked(context.Context, RunEvent) {}

// RunStopped implements [Observer].
func (BaseObserver) RunStopped(context.Context, RunEvent) {}

// StepStarted implements [Observer].
func (BaseObserver) StepStarted(ctx context.Context, _ StepEvent) context.Context { return ctx }

// StepFinished implements [Observer].
func (BaseObserver) StepFinished(context.Context, StepEvent) {}

// RetryScheduled implements [Observer].
func (BaseObserver) RetryScheduled(context.Context, StepEvent) {}

// WaitStarted implements [Observer].
func (BaseObserver) WaitStarted(context.Context, WaitEvent) {}

// WaitEnded implements [Observer].
func (BaseObserver) WaitEnded(context.Context, WaitEvent) {}

// Committed implements [Observer].
func (BaseObserver) Committed(CommitEvent) {}

func (BaseObserver) base() {}

// Reasons of RunStopped and RunResumed events.
const (
	StopClose     = "close"     // the engine is closing
	StopEvicted   = "evicted"   // the run waits and the run cache is full
	StopStorage   = "storage"   // the journal failed; the run is loaded again after a pause
	StopGone      = "gone"      // the run was finished or removed elsewhere
	StopContinued = "continued" // ContinueAsNew: the next epoch starts (RunStarted)

	ResumeRecovery = "recovery" // the first incarnation of the run in this engine: after a restart, a crash, or a claim
	ResumeReload   = "reload"   // loaded again in this engine, after an eviction or a storage error
)

// On a store that engines share (a [journal.Coordinator], which the memory
// store is too), an evicted run that waits for a timer or a message is
// released for any engine to claim: its next load, here or elsewhere, is
// a claim and reports ResumeRecovery.

// RunEvent describes a run, for [Observer] run callbacks.
type RunEvent struct {
	RunID    string
	Workflow string
	Parent   string // the parent run's id, for a child
	Epoch    int    // see ContinueAsNew
	// Meta is what InjectRun returned when the run was created, as
	// journaled; nil if nothing.
	Meta map[string]string
	// Position: RunResumed, the position up to which the journal holds
	// records; RunReplayed, the first position executed live;
	// RunFinished, RunParked and RunStopped, the positions used.
	Position int
	// Records is, in RunResumed, how many records the journal holds.
	Records int
	// Replay is, in RunReplayed, how long replaying took.
	Replay time.Duration
	// Status is, in RunFinished, how the run ended; in RunParked,
	// StatusParked.
	Status Status
	// Err is the run's error (RunFinished), why it parked (RunParked), or
	// why it stopped (RunStopped, if there is an error).
	Err error
	// Reason is, in RunResumed and RunStopped, one of the Resume* and
	// Stop* constants.
	Reason string
}

// StepEvent describes a step attempt, for [Observer] step callbacks.
type StepEvent struct {
	RunID    string
	Workflow string
	Step     string
	Position int
	Attempt  int // from 1
	// Replayed: the step's outcome came from the journal; nothing ran.
	Replayed bool
	// Duration of the attempt (StepFinished), waiting for a WithLimit
	// token included.
	Duration time.Duration
	// Err is the attempt's error (StepFinished, RetryScheduled); nil if
	// it succeeded.
	Err error
	// NextAt is, in RetryScheduled, when the next attempt may start.
	NextAt time.Time
}

// Kinds of wait, for [WaitEvent].
const (
	WaitSleep   = "sleep"   // Sleep, SleepUntil
	WaitReceive = "receive" // Receive, ReceiveTimeout
	WaitChild   = "child"   // Future.Get of a child workflow
	WaitStep    = "step"    // Future.Get of a Go step
	WaitSelect  = "select"  // AwaitAny
	WaitAll     = "all"     // AwaitAll
	WaitRetry   = "retry"   // a step's backoff before its next attempt
)

// WaitEvent describes a wait of the workflow, for [Observer] wait
// callbacks.
type WaitEvent struct {
	RunID    string
	Workflow string
	Kind     string // one of the Wait* constants
	Name     string // the step, channel or child workflow; "" if none
	Position int
	// Duration is, in WaitEnded, how long the workflow waited.
	Duration time.Duration
	// Interrupted is, in WaitEnded, set when the wait was abandoned: the
	// run was evicted or the engine is closing.
	Interrupted bool
}

// CommitEvent describes a write transaction of the journal, for
// [Observer.Committed]: see journal.CommitStats.
type CommitEvent = journal.CommitStats

// obsCall calls fn, which calls the observer's callback, through protect
// (usercode.go): a panic of the observer becomes a log line (the first one
// only: an observer that panics on every call must not flood the log) and
// is otherwise ignored.
func (e *Engine) obsCall(callback string, fn func()) {
	if p := protect(fn); p != nil && e.obsPanicked.CompareAndSwap(false, true) {
		e.log.Error("durable: Config.Observer panicked; its panics are recovered and ignored from now on, and not logged again",
			"callback", callback, "panic", p.Value, "stack", p.Stack)
	}
}

// The calls below are made only when Config.Observer is set; each
// recovers the observer's panics.

func (e *Engine) obsInject(ctx context.Context, ev RunEvent) (meta []byte) {
	var m map[string]string
	e.obsCall("InjectRun", func() { m = e.obs.InjectRun(ctx, ev) })
	if len(m) == 0 {
		return nil
	}
	b, err := marshal(m)
	if err != nil || len(b) > journal.MaxMetaLen {
		e.log.Warn("durable: Config.Observer.InjectRun returned data that cannot be journaled; the run has none", "run_id", ev.RunID, "workflow", ev.Workflow, "bytes", len(b), "err", err)
		return nil
	}
	return b
}

// decodeMeta decodes a run's journaled Meta; nil if there is none, or if
// it does not decode (it is for observers only: a damaged one must not stop
// a run).
func decodeMeta(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	var m map[string]string
	if err := unmarshal(b, &m); err != nil {
		return nil
	}
	return m
}

// runEvent describes x's run.
func (x *executor) runEvent() RunEvent {
	if x.meta == nil {
		x.meta = decodeMeta(x.row.Meta)
	}
	return RunEvent{RunID: x.id, Workflow: x.run.def.Name(), Parent: x.row.Parent, Epoch: int(x.row.Epoch), Meta: x.meta, Position: int(x.next)}
}

// obsBegin reports the start of this incarnation: RunStarted or
// RunResumed. Workflow goroutine, before the workflow function.
func (x *executor) obsBegin() {
	e := x.e
	s := x.run
	s.mu.Lock()
	first := s.obsEpoch != int64(x.row.Epoch)+1
	s.obsEpoch = int64(x.row.Epoch) + 1
	s.mu.Unlock()
	ev := x.runEvent()
	x.octx = context.Background()
	x.replayStart = time.Now()
	var c context.Context
	if first && len(x.recs) == 0 {
		e.obsCall("RunStarted", func() { c = e.obs.RunStarted(x.octx, ev) })
	} else {
		ev.Records = len(x.recs)
		if n := len(x.recs); n > 0 {
			ev.Position = int(x.recs[n-1].Pos) + 1
		}
		ev.Reason = ResumeReload
		if first {
			ev.Reason = ResumeRecovery
		}
		e.obsCall("RunResumed", func() { c = e.obs.RunResumed(x.octx, ev) })
	}
	if c != nil {
		x.octx = c
	}
}

// obsReplayed reports the end of replay.
func (x *executor) obsReplayed() {
	ev := x.runEvent()
	ev.Replay = time.Since(x.replayStart)
	x.e.obsCall("RunReplayed", func() { x.e.obs.RunReplayed(x.octx, ev) })
}

// obsFinished reports the run's end.
func (x *executor) obsFinished(status journal.Status, err error) {
	ev := x.runEvent()
	ev.Status, ev.Err = Status(status), err
	x.e.obsCall("RunFinished", func() { x.e.obs.RunFinished(x.octx, ev) })
}

// obsExited reports why the incarnation ended without finishing.
func (x *executor) obsExited(reason abortReason, err error) {
	switch reason {
	case abortPark:
		ev := x.runEvent()
		ev.Status, ev.Err = StatusParked, err
		x.e.obsCall("RunParked", func() { x.e.obs.RunParked(x.octx, ev) })
	case abortSuspend:
		x.obsStopped(StopStorage, err)
	case abortGone:
		x.obsStopped(StopGone, err)
	case abortEvict:
		x.obsStopped(StopEvicted, err)
	default:
		x.obsStopped(StopClose, err)
	}
}

// obsStopped reports RunStopped for reason.
func (x *executor) obsStopped(reason string, err error) {
	ev := x.runEvent()
	ev.Reason, ev.Err = reason, err
	x.e.obsCall("RunStopped", func() { x.e.obs.RunStopped(x.octx, ev) })
}

// obsParkedIdle reports the parking of a run that has no incarnation.
func (e *Engine) obsParkedIdle(id, workflow string, meta []byte, reason error) {
	ev := RunEvent{RunID: id, Workflow: workflow, Status: StatusParked, Err: reason, Meta: decodeMeta(meta)}
	e.obsCall("RunParked", func() { e.obs.RunParked(context.Background(), ev) })
}

func (t *stepExec) stepEvent() StepEvent {
	x := t.x
	return StepEvent{RunID: x.id, Workflow: x.run.def.Name(), Step: t.name, Position: int(t.o.pos), Attempt: t.attempt}
}

// obsStepStarted reports an attempt's start and sets the values of its
// context.
func (t *stepExec) obsStepStarted() {
	t.vals = t.x.octx
	t.began = time.Now()
	var c context.Context
	t.x.e.obsCall("StepStarted", func() { c = t.x.e.obs.StepStarted(t.x.octx, t.stepEvent()) })
	if c != nil {
		t.vals = c
	}
}

// obsStepFinished reports an attempt's end.
func (t *stepExec) obsStepFinished(err error) {
	ev := t.stepEvent()
	ev.Duration, ev.Err = time.Since(t.began), err
	ctx := t.vals
	t.vals = nil
	t.x.e.obsCall("StepFinished", func() { t.x.e.obs.StepFinished(ctx, ev) })
}

// obsRetry reports a retry journaled for next.
func (t *stepExec) obsRetry(err error, next time.Time) {
	ev := t.stepEvent()
	ev.Err, ev.NextAt = err, next
	t.x.e.obsCall("RetryScheduled", func() { t.x.e.obs.RetryScheduled(t.x.octx, ev) })
}

// obsReplayedStep reports a step answered from the journal.
func (x *executor) obsReplayedStep(name string, o *op, _ journal.Record) {
	rec, ok := o.done()
	if !ok { // settled otherwise: past MaxHistory, or canceled
		return
	}
	ev := StepEvent{RunID: x.id, Workflow: x.run.def.Name(), Step: name, Position: int(o.pos), Attempt: 1, Replayed: true}
	for _, r := range o.recs {
		if r.Flags&flagAttempt != 0 {
			ev.Attempt++
		}
	}
	if rec.Flags&flagError != 0 {
		ev.Err = decodeError(rec.Data)
	}
	x.e.obsCall("StepFinished", func() { x.e.obs.StepFinished(x.octx, ev) })
}

// waitFor names what the next x.wait waits for, for the observer.
func (x *executor) waitFor(kind, name string, pos uint32) {
	x.waitKind, x.waitName, x.waitPos = kind, name, pos
}

func (x *executor) waitEvent() WaitEvent {
	return WaitEvent{RunID: x.id, Workflow: x.run.def.Name(), Kind: x.waitKind, Name: x.waitName, Position: int(x.waitPos)}
}

// obsWaitStarted reports the start of a wait.
func (x *executor) obsWaitStarted() {
	x.waitBegan = time.Now()
	x.e.obsCall("WaitStarted", func() { x.e.obs.WaitStarted(x.octx, x.waitEvent()) })
}

// obsWaitEnded reports the end of a wait.
func (x *executor) obsWaitEnded(interrupted bool) {
	ev := x.waitEvent()
	ev.Duration, ev.Interrupted = time.Since(x.waitBegan), interrupted
	x.e.obsCall("WaitEnded", func() { x.e.obs.WaitEnded(x.octx, ev) })
}

// obsCommits subscribes the observer to the store's commit statistics,
// if the store reports them; the returned func unsubscribes.
func (e *Engine) obsCommits() func() {
	r, ok := e.store.(journal.CommitReporter)
	if !ok {
		return func() {}
	}
	return r.ReportCommits(func(cs journal.CommitStats) {
		e.obsCall("Committed", func() { e.obs.Committed(cs) })
	})
}
