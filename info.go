package durable

import (
	"context"
	"fmt"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Status is a run's state. The zero value is not a status.
type Status uint8

// Statuses. Completed, Failed and Canceled are terminal.
const (
	// StatusRunning: executing, sleeping or waiting for a message.
	StatusRunning = Status(journal.StatusRunning)
	// StatusParked: the run cannot go on with the code at hand (replay
	// diverged, its workflow is not registered, a payload no longer
	// decodes). It is kept, and resumed by an engine with compatible code.
	StatusParked = Status(journal.StatusParked)
	// StatusCompleted: the workflow returned a result.
	StatusCompleted = Status(journal.StatusCompleted)
	// StatusFailed: the workflow returned an error or panicked.
	StatusFailed = Status(journal.StatusFailed)
	// StatusCanceled: the run was canceled (or its deadline passed) and
	// the workflow returned the cancellation.
	StatusCanceled = Status(journal.StatusCanceled)
)

// String returns "running", "parked", "completed", "failed" or
// "canceled".
func (s Status) String() string { return journal.Status(s).String() }

// Terminal reports whether s is Completed, Failed or Canceled.
func (s Status) Terminal() bool { return journal.Status(s).Terminal() }

// RunInfo describes a run.
type RunInfo struct {
	ID, Workflow string
	Status       Status
	// Err is why the run failed, was canceled or is parked; nil otherwise.
	Err error
	// Parent is the id of the run that started this one as a child; "" for
	// a top-level run.
	Parent    string
	CreatedAt time.Time
	// UpdatedAt is when the run's status, wake time or cancel flag last
	// changed.
	UpdatedAt time.Time
	// WakeAt is when the run's latest timer (a sleep, a retry, a receive
	// timeout) is due; zero if none.
	WakeAt time.Time
	// Deadline is the run's deadline; zero if none.
	Deadline time.Time
	// CancelRequested is set once Cancel was called for the run.
	CancelRequested bool
	// Pending lists what an unfinished run is doing now, as [Engine.Get]
	// finds it: the operations it began and did not finish, in position
	// order (a step executing or waiting to retry, a sleep, a receive, the
	// children it awaits). A step's first attempt and a receive without a
	// timeout leave nothing in the journal, so they appear only while the
	// run is loaded in this engine. [Engine.List] leaves Pending empty.
	Pending []Operation
	// Inbox is how many messages wait in the run's inbox, and
	// InboxChannels how many on each channel ([Engine.Get] only; a store
	// that does not implement journal.InboxCounter reports only the
	// channels of pending receives).
	Inbox         int
	InboxChannels map[string]int
	// Builds are the Config.BuildID of the engines that started and
	// resumed the run, oldest first (see journal.Run.Builds); empty if
	// they had none.
	Builds []string
	// Input and Output are the run's input and (once it completed) its
	// result as JSON for people, cut at 200 bytes, as [DescribePayload]
	// renders them ([Engine.Get] only).
	Input, Output string
	// Meta is what Config.Observer's InjectRun journaled with the run when
	// it was created (the otel module's trace context); nil if nothing.
	Meta map[string]string
	// Waiting says, for a running run that is not moving, what it waits
	// for: "a timer at <time> or a message", "a message", or "workflow
	// \"x\" is not registered in this engine" (an engine never touches
	// runs of workflows it does not have: such a run waits for one that
	// does). "" otherwise.
	Waiting string
	// Owner is the engine that executes the run when engines share a
	// store (see journal.Coordinator); "" if none does right now, or the
	// store is not shared.
	Owner string
	// Queue is the queue the run was started on ([OnQueue]), "" for
	// none, and Priority its priority there. Queued is set while the run
	// waits to be admitted, and QueuePosition is then its place ([Engine.Get]
	// only): 1 if it is the next to be admitted, 0 once admitted. DedupKey
	// is its [WithDedupKey].
	Queue         string
	Priority      int
	Queued        bool
	QueuePosition int
	DedupKey      string
}

func infoOf(r *journal.Run) RunInfo {
	return RunInfo{
		ID:              r.ID,
		Workflow:        r.Workflow,
		Status:          Status(r.Status),
		Err:             decodeError(r.Err),
		Parent:          r.Parent,
		CreatedAt:       r.CreatedAt,
		UpdatedAt:       r.UpdatedAt,
		WakeAt:          r.WakeAt,
		Deadline:        r.Deadline,
		CancelRequested: r.CancelRequested,
		Builds:          r.Builds,
		Meta:            decodeMeta(r.Meta),
		Owner:           r.Owner,
		Queue:           r.Queue,
		Priority:        int(r.Priority),
		Queued:          journal.IsWaiting(r),
		DedupKey:        r.DedupKey,
	}
}

// info is infoOf with what only this engine knows: whether it has the
// run's workflow.
func (e *Engine) info(r *journal.Run) RunInfo {
	in := infoOf(r)
	if r.Status != journal.StatusRunning {
		return in
	}
	e.mu.Lock()
	_, known := e.defs[r.Workflow]
	e.mu.Unlock()
	switch {
	case !known:
		in.Waiting = fmt.Sprintf("workflow %q is not registered in this engine", r.Workflow)
	case in.Queued && !r.CancelRequested:
		in.Waiting = fmt.Sprintf("its turn in queue %q", r.Queue)
	case r.Idle && !r.WakeAt.IsZero():
		in.Waiting = "a timer at " + r.WakeAt.UTC().Format(time.RFC3339Nano) + " or a message"
	case r.Idle:
		in.Waiting = "a message"
	}
	return in
}

// Get returns what the journal says of run id, with what an unfinished
// run is doing now (RunInfo.Pending, RunInfo.Inbox). It fails with an
// error matching [ErrNotFound] if there is no such run.
func (e *Engine) Get(ctx context.Context, id string) (RunInfo, error) {
	if e == nil {
		return RunInfo{}, errNilEngine
	}
	if err := checkRunID(id); err != nil {
		return RunInfo{}, err
	}
	r, err := e.store.GetRun(ctx, id)
	if err != nil {
		return RunInfo{}, errorf("durable: %w", err)
	}
	info := e.info(&r)
	info.Input, info.Output = describeValue(r.Input), describeValue(r.Output)
	if info.Queued {
		if q, ok := e.store.(journal.Queues); ok {
			if pos, err := q.QueuePosition(ctx, &r); err == nil {
				info.QueuePosition = pos
			}
		}
	}
	if !info.Status.Terminal() {
		e.pending(ctx, &info)
	}
	return info, nil
}

// Resume sets parked run id back to running and loads it: a run parked
// because its code diverged, its workflow was not registered or a payload
// did not decode, once the code is fixed (a run that still does not fit
// the code parks again, with the new reason). Resuming a running run does
// nothing. It fails with an error matching [ErrNotFound] for an unknown
// run, [ErrFinished] for a finished one, and [ErrNotRegistered] (changing
// nothing) if this engine does not have the run's workflow.
func (e *Engine) Resume(ctx context.Context, id string) error {
	if e.isClosed() {
		return ErrClosed
	}
	r, err := e.store.GetRun(ctx, id)
	if err != nil {
		return errorf("durable: resume run %s: %w", clip.Q(id), err)
	}
	if r.Status.Terminal() {
		return errorf("durable: resume run %s: it is %s: %w", clip.Q(id), Status(r.Status), ErrFinished)
	}
	e.mu.Lock()
	def := e.defs[r.Workflow]
	e.mu.Unlock()
	if def == nil {
		return errorf("durable: resume run %s: workflow %s: %w", clip.Q(id), clip.Q(r.Workflow), ErrNotRegistered)
	}
	if e.coord != nil {
		// Running again, unowned: an engine with the workflow claims it.
		if r.Status == journal.StatusParked {
			b := &journal.Batch{Now: e.clock.Now(), Update: []journal.Update{{RunID: id, Status: journal.StatusRunning}}}
			if err := e.store.Commit(ctx, b); err != nil {
				return errorf("durable: resume run %s: %w", clip.Q(id), err)
			}
		}
		e.kickClaims()
		return nil
	}
	if _, err := e.attach(id, def); err != nil {
		return errorf("durable: resume run %s: %w", clip.Q(id), err)
	}
	return nil
}

// ListOptions selects runs for [Engine.List]. Zero fields match
// everything.
type ListOptions struct {
	Status   Status // 0: any
	Workflow string // "": any
	Parent   string // "": any; else the children of that run
	// After continues a listing: pass the NextAfter of the previous page.
	After string
	// Limit is the page size. Defaults to 100.
	Limit int
}

// RunPage is one page of [Engine.List].
type RunPage struct {
	Runs []RunInfo
	// NextAfter is the ListOptions.After of the next page; "" if this page
	// is the last.
	NextAfter string
}

// List returns runs that match opts, in id order, a page at a time.
func (e *Engine) List(ctx context.Context, opts ListOptions) (RunPage, error) {
	if e == nil {
		return RunPage{}, errNilEngine
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = 100
	}
	runs, err := e.store.ListRuns(ctx, journal.Filter{
		Status:   journal.Status(opts.Status),
		Workflow: opts.Workflow,
		Parent:   opts.Parent,
		After:    opts.After,
		Limit:    limit + 1,
	})
	if err != nil {
		return RunPage{}, errorf("durable: list runs: %w", err)
	}
	var p RunPage
	if len(runs) > limit {
		runs = runs[:limit]
		p.NextAfter = runs[limit-1].ID
	}
	p.Runs = make([]RunInfo, len(runs))
	for i := range runs {
		p.Runs[i] = e.info(&runs[i])
	}
	return p, nil
}
