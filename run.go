package durable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// StartOption configures a run when it is created. See [WithDeadline],
// [WithRunTimeout], [Detached], [StartAt], [StartAfter], [OnQueue],
// [WithPriority] and [WithDedupKey].
type StartOption func(*startConfig)

type startConfig struct {
	deadline time.Time
	timeout  time.Duration
	detached bool

	startAt    time.Time     // StartAt (start_delayed.go)
	startAfter time.Duration // StartAfter

	queue       string // OnQueue (queue.go)
	priority    int    // WithPriority
	prioritySet bool
	dedupKey    string // WithDedupKey
}

// WithDeadline gives the run a deadline, journaled with it and enforced
// across restarts: when it passes, the run is canceled with
// [ErrDeadlineExceeded] (which matches [ErrCanceled]).
func WithDeadline(t time.Time) StartOption {
	return func(c *startConfig) { c.deadline = t }
}

// WithRunTimeout is [WithDeadline] at d from the run's creation.
func WithRunTimeout(d time.Duration) StartOption {
	return func(c *startConfig) { c.timeout = d }
}

// Detached makes a child workflow (see [StartChild]) independent of its
// parent's cancellation: canceling the parent does not cancel it.
func Detached() StartOption {
	return func(c *startConfig) { c.detached = true }
}

func (c *startConfig) deadlineFrom(now time.Time) time.Time {
	d := c.deadline
	if c.timeout > 0 {
		if t := later(now, c.timeout); d.IsZero() || t.Before(d) {
			d = t
		}
	}
	if d.IsZero() {
		return d
	}
	return journalTime(d)
}

// Handle is a started run. It is safe for concurrent use.
type Handle[O any] struct {
	e  *Engine
	id string
	lr *liveRun // the run as Start found or made it, if it attached here
	// final is the run's final state if Start or Attach found it finished.
	final *journal.Run
}

// ID returns the run's id.
func (h *Handle[O]) ID() string { return h.id }

// Result waits for the run to finish and returns its result: the value the
// workflow returned, or its error (as recorded; see [RecordedError]). ctx
// bounds only the wait. A parked run returns a [*ParkedError] at once (it
// cannot finish with this engine's code); an engine closed meanwhile
// returns [ErrClosed]. The handle keeps the outcome of a run that finished
// in this engine (or was found finished by Start or Attach), so Result
// returns it even after Config.Retention or [Engine.Purge] deleted the run.
func (h *Handle[O]) Result(ctx context.Context) (O, error) {
	var zero O
	e := h.e
	pause := 5 * time.Millisecond
	var row journal.Run
	var err error
	final := h.final // once a run finished, retention may delete it
	for final == nil {
		lr := e.liveRunOf(h.id) // a parked run resumed since Start has a new one
		if lr == nil {
			lr = h.lr
		}
		if lr != nil {
			select {
			case <-lr.finished:
			case <-ctx.Done():
				return zero, ctx.Err()
			case <-e.ctx.Done():
				return zero, ErrClosed
			}
			if final = lr.finalOutcome(); final != nil {
				break
			}
		}
		var adopted <-chan struct{}
		if e.coord != nil {
			adopted = e.adoptedCh() // before the read: no adoption is missed
		}
		admitted := e.admittedCh()
		row, err = e.store.GetRun(ctx, h.id)
		if err == nil && e.coord == nil && row.Status == journal.StatusRunning && row.Queue != "" {
			// Waiting in its queue, or admitted and not yet live: look
			// again once this engine admits (or, should the run not come
			// alive here, less and less often).
			if e.liveRunOf(h.id) != nil {
				continue // alive since the loop's look-up: wait for it
			}
			select {
			case <-admitted:
				continue
			case <-time.After(pause):
				pause = min(2*pause, time.Second)
				continue
			case <-ctx.Done():
				return zero, ctx.Err()
			case <-e.ctx.Done():
				return zero, ErrClosed
			}
		}
		if err != nil || row.Status != journal.StatusRunning || e.coord == nil || e.liveRunOf(h.id) != nil {
			if err == nil && e.coord != nil && row.Status == journal.StatusRunning {
				continue // claimed here meanwhile
			}
			break
		}
		// Running in another engine (or waiting to be claimed): look
		// again, less and less often, up to a second, and at once when
		// this engine claims a run.
		select {
		case <-time.After(pause):
		case <-adopted:
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-e.ctx.Done():
			return zero, ErrClosed
		}
		pause = min(2*pause, time.Second)
	}
	if final == nil && errors.Is(err, journal.ErrNotFound) {
		final = e.finished.get(h.id) // finished here, then deleted by retention
	}
	if final != nil {
		row, err = *final, nil
	}
	if err != nil {
		if e.isClosed() {
			return zero, ErrClosed
		}
		return zero, errorf("durable: result of run %s: %w", clip.Q(h.id), err)
	}
	switch row.Status {
	case journal.StatusCompleted:
		var out O
		if err := decodePayload(row.Output, &out, e.cfg.MaxPayloadBytes); err != nil {
			return zero, payloadErr(err, "result of run %q", h.id)
		}
		return out, nil
	case journal.StatusFailed, journal.StatusCanceled:
		return zero, decodeError(row.Err)
	case journal.StatusParked:
		return zero, &ParkedError{RunID: h.id, Reason: decodeError(row.Err)}
	}
	if e.isClosed() {
		return zero, ErrClosed
	}
	return zero, errorf("durable: run %s (workflow %s) is not running in this engine: %w", clip.Q(h.id), clip.Q(row.Workflow), ErrNotRegistered)
}

// Start creates run id of workflow w with input in, and starts it in the
// background. If run id exists, Start changes nothing and returns it:
// never a second execution, whatever the input (concurrent Starts of one
// id make one run). An id of another workflow fails with
// [ErrWorkflowMismatch]. An empty id asks for a new unique id. ctx bounds
// only this call: canceling it never cancels the run ([Engine.Cancel]
// does). Start registers w with the engine if it was not in
// Config.Workflows. opts apply only when the run is created: see
// [WithDeadline], [WithRunTimeout], [StartAt] and [StartAfter].
func Start[I, O any](ctx context.Context, e *Engine, w *Workflow[I, O], id string, in I, opts ...StartOption) (*Handle[O], error) {
	id, input, err := startInput(e, w, id, in, "Start")
	if err != nil {
		return nil, err
	}
	var sc startConfig
	for _, o := range opts {
		if o != nil {
			o(&sc)
		}
	}
	now := e.clock.Now()
	row := journal.Run{ID: id, Workflow: w.Name(), Status: journal.StatusRunning, Input: input, Deadline: sc.deadlineFrom(now), CreatedAt: now, Builds: e.startBuilds()}
	if at := sc.startFrom(now); !at.IsZero() {
		row.WakeAt, row.Idle = at, true // nothing to load before at
	}
	row.Owner = e.engineID // with a coordinator: this engine runs what it starts
	if err := e.queueRow(&sc, &row); err != nil {
		return nil, err
	}
	if e.obs != nil {
		// Only for a new run: what InjectRun makes (a span) would be a
		// stray for a run that exists. A concurrent Start of the same id
		// may still make one in vain.
		if _, err := e.store.GetRun(ctx, id); isNotFound(err) {
			row.Meta = e.obsInject(ctx, RunEvent{RunID: id, Workflow: w.Name()})
		}
	}
	var got journal.Run
	var created bool
	if row.Queue != "" || row.DedupKey != "" {
		got, created, err = e.createQueued(ctx, row)
		var de *DuplicateError
		if errors.As(err, &de) {
			return nil, de
		}
	} else {
		got, created, err = e.store.CreateRun(ctx, row)
	}
	if err != nil {
		if e.isClosed() {
			return nil, ErrClosed
		}
		return nil, errorf("durable: start run %s: %w", clip.Q(id), err)
	}
	crashPoint("start", id, -1)
	if got.Workflow != w.Name() {
		return nil, errorf("durable: start run %s of workflow %s: it is a %s run: %w", clip.Q(id), clip.Q(w.Name()), clip.Q(got.Workflow), ErrWorkflowMismatch)
	}
	h := &Handle[O]{e: e, id: id}
	switch {
	case got.Status.Terminal():
		h.final = &got
	case got.Queued && !got.CancelRequested:
		e.kickQueues() // it waits in its queue, loaded by nobody
	case e.coord == nil:
		if h.lr, err = e.attach(id, w); err != nil {
			return nil, err
		}
	case created:
		if err := e.attachOwned(id, w, got.Token, &got); err != nil {
			return nil, err
		}
		h.lr = e.liveRunOf(id)
	default:
		// It exists: whichever engine owns or claims it runs it.
		e.kickClaims()
	}
	return h, nil
}

// startInput checks what Start and SendWithStart (op) are given, registers
// w, and encodes in. It returns the run's id: id, or a new one for "".
func startInput[I, O any](e *Engine, w *Workflow[I, O], id string, in I, op string) (string, []byte, error) {
	if e == nil || w == nil {
		return "", nil, &ArgError{Msg: "durable: " + op + ": nil *Engine or *Workflow"}
	}
	if err := checkRunID(id); err != nil {
		return "", nil, err
	}
	if err := e.register(w); err != nil {
		return "", nil, err
	}
	if id == "" {
		id = newID()
	}
	input, err := encodePayload(in, e.cfg.MaxPayloadBytes)
	if err != nil {
		return "", nil, payloadErr(err, "input of run %q", id)
	}
	return id, input, nil
}

// Run starts run id of workflow w (see [Start]) and waits for its result
// (see [Handle.Result]). ctx bounds only the call.
func Run[I, O any](ctx context.Context, e *Engine, w *Workflow[I, O], id string, in I) (O, error) {
	h, err := Start(ctx, e, w, id, in)
	if err != nil {
		var zero O
		return zero, err
	}
	return h.Result(ctx)
}

// newID returns a random run id: 16 bytes from crypto/rand, in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead of erring)
	return hex.EncodeToString(b[:])
}

// Attach returns a handle on existing run id of workflow w, without an
// input: to wait for a run that an earlier process started, say. It
// registers w with the engine (as [Start] does, which resumes w's
// unfinished runs, this one included). It fails with an error matching
// [ErrNotFound] if there is no such run and [ErrWorkflowMismatch] if the
// run is of another workflow. ctx bounds only this call.
func Attach[I, O any](ctx context.Context, e *Engine, w *Workflow[I, O], id string) (*Handle[O], error) {
	if e == nil || w == nil {
		return nil, &ArgError{Msg: "durable: Attach: nil *Engine or *Workflow"}
	}
	if err := checkRunID(id); err != nil {
		return nil, err
	}
	if err := e.register(w); err != nil {
		return nil, err
	}
	row, err := e.store.GetRun(ctx, id)
	if err != nil {
		if e.isClosed() {
			return nil, ErrClosed
		}
		return nil, errorf("durable: attach to run %s: %w", clip.Q(id), err)
	}
	if row.Workflow != w.Name() {
		return nil, errorf("durable: attach to run %s of workflow %s: it is a %s run: %w", clip.Q(id), clip.Q(w.Name()), clip.Q(row.Workflow), ErrWorkflowMismatch)
	}
	h := &Handle[O]{e: e, id: id}
	if row.Status.Terminal() {
		h.final = &row
	}
	if row.Status == journal.StatusRunning && (!row.Queued || row.CancelRequested) {
		if _, err := e.attach(id, w); err != nil {
			return nil, err
		}
	}
	return h, nil
}
