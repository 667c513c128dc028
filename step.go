package durable

import (
	"cmp"
	"context"
	"log/slog"
	"reflect"
	"strconv"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// StepOption configures one step. See [WithRetry], [WithTimeout],
// [WithLimit] and [AtMostOnce].
type StepOption func(*stepConfig)

type stepConfig struct {
	policy     *retry.Policy
	timeout    time.Duration
	limit      string
	atMostOnce bool
}

// WithRetry sets the step's retry policy. Without it a step uses
// Config.DefaultRetry (3 attempts by default). Each failed attempt and the
// time of the next one are journaled, so a restart during a backoff wait
// resumes at the right attempt and waits only what remains.
func WithRetry(p retry.Policy) StepOption {
	return func(c *stepConfig) { c.policy = &p }
}

// WithTimeout bounds each attempt of the step: its context gets a deadline
// d after the attempt starts. An attempt that runs out fails (and may be
// retried). It overrides the policy's Timeout.
func WithTimeout(d time.Duration) StepOption {
	return func(c *stepConfig) { c.timeout = d }
}

// AtMostOnce marks a step that must not run twice, such as a payment
// without an idempotency key: the engine journals each attempt's start
// before running it, and if a crash or [Engine.Close] interrupts an
// attempt (Close cancels its context, but it may have had its effect), the
// step returns a [*StepInterruptedError] on resume instead of running
// again.
// The workflow decides what to do (ask the other system, using the key).
// An attempt costs one more fsync.
func AtMostOnce() StepOption {
	return func(c *stepConfig) { c.atMostOnce = true }
}

// StepInfo describes the step attempt running, for the step's code.
type StepInfo struct {
	RunID    string
	Workflow string
	Step     string
	Position int
	Attempt  int // from 1
	// IdempotencyKey is the same for every attempt of this step, before
	// and after restarts, and differs between steps: pass it to external
	// APIs that deduplicate requests. It is "<run id>/<position>".
	IdempotencyKey string
}

type stepInfoKey struct{}

// StepInfoFrom returns the step information carried by a step's context.
func StepInfoFrom(ctx context.Context) (StepInfo, bool) {
	sc, ok := ctx.Value(stepInfoKey{}).(*stepContext)
	if !ok {
		return StepInfo{}, false
	}
	info := sc.t.info()
	info.Attempt = sc.attempt
	return info, true
}

// stepContext is a step attempt's context: its parent plus what
// StepInfoFrom needs, in one allocation; the StepInfo is built only if
// asked for.
type stepContext struct {
	context.Context
	t       *stepExec
	attempt int
	vals    context.Context // Config.Observer's context for the attempt, or nil
}

func (c *stepContext) Value(key any) any {
	if key == (stepInfoKey{}) {
		return c
	}
	if c.vals != nil {
		if v := c.vals.Value(key); v != nil {
			return v
		}
	}
	return c.Context.Value(key)
}

// Step runs fn as a durable step of the workflow and returns its result.
// The result (value or final error) is journaled and fsynced before Step
// returns; on replay the recorded result is returned without calling fn.
// fn runs at least once and until it succeeds or its retry policy gives up
// (at-least-once execution, exactly-once recording); its final failure is
// a [*StepError]. A panic in fn is a failed attempt. fn's context is
// canceled when the run is canceled or the engine closes.
//
// The error a workflow sees is the recorded one, the same live and on
// replay: see [RecordedError].
func Step[T any](ctx Context, name string, fn func(context.Context) (T, error), opts ...StepOption) (T, error) {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		var zero T
		return zero, err
	}
	defer x.leave()
	if err := checkStepName(name); err != nil {
		var zero T
		return zero, err
	}
	o, rec, settled := x.begin(ctx, kindStep, name)
	if settled {
		if x.e.obs != nil {
			x.obsReplayedStep(name, &o, rec)
		}
		return decodeOutcome[T](x, rec)
	}
	if x.replay != nil {
		x.replayEnd() // a replay check executes no step
	}
	t := &x.stepExec // runOnce delivers a pending cancellation first
	x.initStepExec(t, ctx, o, name, opts)
	t.fn = typedStep[T](fn)
	for !t.runOnce() {
		at := t.nextAt
		x.e.wakes.add(x.id, at, false)
		x.waitFor(WaitRetry, name, o.pos)
		x.wait(func() bool { return !x.now().Before(at) || t.cancelRequested() != nil })
	}
	x.replayed(t.done)
	if v, ok := t.live.(T); ok {
		return v, nil
	}
	return decodeOutcome[T](x, t.done)
}

// stepFunc is a typed step function as the engine calls it.
type stepFunc interface {
	// call runs the function and encodes its result; encoding failures
	// are reported apart from the step's own errors. live is the result
	// itself when its type is plain (see isPlain): the workflow gets it
	// without a decode, since a decode would give back the same value.
	call(t *stepExec, ctx context.Context) (data []byte, live any, stepErr, encErr error)
}

// typedStep is a user's step function. Converting one to a stepFunc
// allocates nothing (a func is pointer-shaped), unlike a closure.
type typedStep[T any] func(context.Context) (T, error)

func (f typedStep[T]) call(t *stepExec, ctx context.Context) ([]byte, any, error, error) {
	v, err := f(ctx)
	if err != nil {
		return nil, nil, err, nil
	}
	ti := infoOfType(reflect.TypeFor[T]())
	b, encErr := encodeChecked(v, t.x.e.cfg.MaxPayloadBytes, ti)
	if encErr != nil {
		return nil, nil, nil, payloadErr(encErr, "result of step %q", t.name)
	}
	if ti.plain {
		return b, v, nil, nil
	}
	return b, nil, nil, nil
}

// decodeOutcome turns an operation's outcome record into its typed
// result. A recorded value that no longer decodes into T parks the run.
func decodeOutcome[T any](x *executor, r journal.Record) (T, error) {
	var v T
	if r.Flags&flagError != 0 {
		return v, decodeError(r.Data)
	}
	if err := decodeTyped(r.Data, &v, x.e.cfg.MaxPayloadBytes); err != nil {
		x.park(payloadErr(err, "recorded result of %s at position %d of run %q", describe(r.Kind, r.Name), r.Pos, x.id))
	}
	return v, nil
}

// A stepExec is one step's execution state: what was recorded, which attempt
// comes next, and when it may start.
type stepExec struct {
	x      *executor
	ctx    Context
	o      op
	name   string
	cfg    stepConfig
	policy retry.Policy
	fn     stepFunc

	attempt int       // the next attempt's number, from 1
	nextAt  time.Time // not before this
	started bool      // an at-most-once attempt began and did not end
	done    journal.Record
	live    any // the successful result itself, if its type is plain
	isDone  bool
	future  *futureState    // set for Go
	sc      stepContext     // the running attempt's context
	vals    context.Context // Config.Observer's context for the running attempt
	began   time.Time       // when the running attempt started, for Config.Observer
}

// newStepExec returns a step execution for the step at o (a future's: Go).
func (x *executor) newStepExec(ctx Context, o op, name string, opts []StepOption) *stepExec {
	t := new(stepExec)
	x.initStepExec(t, ctx, o, name, opts)
	return t
}

// initStepExec sets t up for the step at o, from what the journal holds of
// it. Step reuses one stepExec per executor: the workflow goroutine runs
// one step at a time.
func (x *executor) initStepExec(t *stepExec, ctx Context, o op, name string, opts []StepOption) {
	*t = stepExec{x: x, ctx: ctx, o: o, name: name, attempt: 1}
	for _, opt := range opts {
		opt(&t.cfg)
	}
	if t.cfg.policy != nil {
		t.policy = *t.cfg.policy
	} else {
		t.policy = *x.e.cfg.DefaultRetry
	}
	for _, r := range o.recs {
		switch {
		case r.Flags&flagAttempt != 0:
			t.attempt++
			t.nextAt = r.Time
			t.started = false
		case r.Flags&flagStarted != 0:
			t.started = true
		}
	}
}

func (t *stepExec) info() StepInfo {
	x := t.x
	return StepInfo{
		RunID:          x.id,
		Workflow:       x.run.def.Name(),
		Step:           t.name,
		Position:       int(t.o.pos),
		Attempt:        t.attempt,
		IdempotencyKey: x.id + "/" + strconv.FormatUint(uint64(t.o.pos), 10),
	}
}

// runOnce makes one attempt if one is due, and records its outcome. It
// reports true when the step is done (t.done holds the outcome); false
// means wait until t.nextAt and call again. If the executor is aborted it
// records nothing; callers on the workflow goroutine then exit.
func (t *stepExec) runOnce() bool {
	x := t.x
	if cause := t.cancelRequested(); cause != nil {
		return t.finish(nil, cause, t.deliverFlags(cause))
	}
	if t.started && t.cfg.atMostOnce {
		info := t.info()
		err := &StepInterruptedError{Step: t.name, Key: info.IdempotencyKey, Attempt: t.attempt}
		return t.finish(nil, err, 0)
	}
	if !t.nextAt.IsZero() && x.now().Before(t.nextAt) {
		return false
	}
	if t.cfg.atMostOnce {
		r := t.o.record(kindStep, t.name, flagStarted)
		if !t.commit(r, nil) {
			return t.abandon()
		}
	}
	if !x.awaitLease() {
		return t.abandon()
	}
	crashPoint("step-before", x.id, int(t.o.pos))
	if x.e.obs != nil {
		t.obsStepStarted()
	}
	data, live, stepErr, encErr := t.execute()
	if x.e.obs != nil {
		t.obsStepFinished(cmp.Or(stepErr, encErr))
	}
	crashPoint("step-effect", x.id, int(t.o.pos))
	if x.aborted() {
		return t.abandon()
	}
	if cause := t.cancelRequested(); cause != nil {
		if stepErr == nil && encErr == nil {
			// It succeeded anyway: keep the result (its effect happened);
			// the cancellation reaches the workflow here all the same.
			t.live = live
			return t.finish(data, nil, t.deliverFlags(cause))
		}
		return t.finish(nil, cause, t.deliverFlags(cause))
	}
	if encErr != nil { // the step ran, but its result cannot be recorded
		return t.finish(nil, &StepError{Workflow: x.run.def.Name(), RunID: x.id, Step: t.name, Position: int(t.o.pos), Attempts: t.attempt, Err: encErr}, 0)
	}
	if stepErr == nil {
		t.live = live
		return t.finish(data, nil, 0)
	}
	var delay time.Duration
	var again bool
	if p := protect(func() { delay, again = t.retryPolicy().Next(t.attempt, stepErr) }); p != nil {
		stepErr, again = p, false // its Retryable or Backoff panicked: no retry can be planned
	}
	if !again {
		return t.finish(nil, &StepError{Workflow: x.run.def.Name(), RunID: x.id, Step: t.name, Position: int(t.o.pos), Attempts: t.attempt, Err: stepErr}, 0)
	}
	next := later(x.now(), delay)
	r := t.o.record(kindStep, t.name, flagAttempt|flagError)
	r.Data, r.Time = encodeError(stepErr), next
	if !t.commit(r, &next) {
		return t.abandon()
	}
	if x.e.obs != nil {
		t.obsRetry(stepErr, next)
	}
	if x.e.log.Enabled(context.Background(), slog.LevelDebug) {
		x.e.log.Debug("durable: step attempt failed; retrying", "run_id", x.id, "workflow", x.run.def.Name(), "step", t.name,
			"position", t.o.pos, "attempt", t.attempt, "err", stepErr, "retry_at", next)
	}
	t.attempt++
	t.nextAt = next
	t.started = false
	return false
}

// execute runs one attempt of fn under the step's limits, with its
// context, turning a panic into an error.
func (t *stepExec) execute() (data []byte, live any, stepErr, encErr error) {
	x := t.x
	parent := x.stepParent(t.ctx)
	pm, err := x.e.acquire(parent, t.cfg.limit)
	if err != nil {
		return nil, nil, err, nil
	}
	defer func() { x.e.release(pm, stepErr) }()
	timeout := t.policy.Timeout
	if t.cfg.timeout > 0 {
		timeout = t.cfg.timeout
	}
	sc := &t.sc
	if timeout > 0 {
		// A context of its own: the deadline's timer goroutine may read
		// its parent (removeChild) after this attempt returned, while the
		// next attempt or Step would be rewriting t.sc.
		sc = new(stepContext)
	}
	*sc = stepContext{Context: parent, t: t, attempt: t.attempt, vals: t.vals}
	var ctx context.Context = sc
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(sc, timeout)
		defer cancel()
	}
	if f := t.future; f != nil {
		// Future.Cancel cancels this attempt alone (cancel_scope.go).
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		if !f.setAttemptStop(x, stop) {
			stop()
		}
		defer f.setAttemptStop(x, nil)
	}
	if p := protect(func() { data, live, stepErr, encErr = t.fn.call(t, ctx) }); p != nil {
		return nil, nil, p, nil
	}
	return data, live, safeError(stepErr), encErr
}

// finish records the step's outcome: data, or err (a final failure),
// with extra flags (a cancellation delivered).
func (t *stepExec) finish(data []byte, err error, extra uint8) bool {
	flags := flagDone | extra
	if err != nil {
		flags |= flagError
		data = encodeError(err)
	}
	r := t.o.record(kindStep, t.name, flags)
	r.Data = data
	var wake *time.Time
	if t.attempt > 1 {
		wake = &time.Time{} // the retry wait is over
	}
	if !t.commit(r, wake) {
		return t.abandon()
	}
	crashPoint("step-commit", t.x.id, int(t.o.pos))
	t.x.e.counters.steps.Add(1)
	t.done, t.isDone = r, true
	return true
}

// commit writes one record of the step execution, and a new wake time if
// wake is not nil.
func (t *stepExec) commit(r journal.Record, wake *time.Time) bool {
	x := t.x
	if t.future == nil {
		x.write(wake, r) // workflow goroutine: exits on failure
		return true
	}
	b := new(journal.Batch)
	x.fill(b, wake, r)
	return x.commit(b)
}

// abandon gives up on the step execution because the executor was aborted.
func (t *stepExec) abandon() bool {
	if t.future == nil {
		t.x.exit()
	}
	return true
}
