package durable

import (
	"context"
	"errors"
	"time"
)

// Context is what a workflow function receives. It is a context.Context
// whose cancellation is durable and deterministic: Done closes when the
// run's cancellation reaches the workflow, at the same point of the code
// on every replay (see Cancellation in the package docs); a Context made
// by [WithCancel] is done also when its own cancel (or a parent scope's)
// is called. It carries no values and no deadline. Only the engine (and
// [WithCancel], [WithoutCancel]) makes a Context; it must be used by the
// workflow goroutine only (use [Go] for concurrency).
type Context interface {
	context.Context
	// RunID returns the id of the run.
	RunID() string
	// executor is what the durable operations use.
	executor() *executor
	// canceled returns the error ops on this context return once the run's
	// cancellation was delivered, or nil (always nil when detached).
	canceled() error
	ignoresCancel() bool
	// scope is the cancel scope operations on this context belong to
	// (WithCancel), or nil.
	scope() *cancelScope
}

type wfContext struct {
	x        *executor
	noCancel bool
	cs       *cancelScope // WithCancel's, or nil
}

var _ Context = (*wfContext)(nil)

func (c *wfContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *wfContext) Done() <-chan struct{} {
	if c.cs != nil {
		return c.cs.doneChan()
	}
	if c.noCancel {
		return nil
	}
	return c.x.doneCh
}

func (c *wfContext) Err() error {
	if c.noCancel || c.x.cancelErr == nil {
		if c.cs.isCanceled() {
			return context.Canceled
		}
		return nil
	}
	if errors.Is(c.x.cancelErr, ErrDeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

func (c *wfContext) Value(any) any       { return nil }
func (c *wfContext) RunID() string       { return c.x.id }
func (c *wfContext) executor() *executor { return c.x }
func (c *wfContext) ignoresCancel() bool { return c.noCancel }
func (c *wfContext) scope() *cancelScope { return c.cs }

func (c *wfContext) canceled() error {
	if !c.noCancel && c.x.cancelErr != nil {
		return c.x.cancelErr
	}
	if c.cs.isCanceled() {
		return errOpCanceled
	}
	return nil
}

// stepParent returns the parent context of c's steps.
func (x *executor) stepParent(c Context) context.Context {
	if s := c.scope(); s != nil {
		return s.context()
	}
	if c.ignoresCancel() {
		return x.e.ctx
	}
	return x.liveContext()
}

// WorkflowInfo describes the run a workflow is executing, for the
// workflow's own code: see [WorkflowInfoFrom]. (What the engine reports
// about a stored run, from outside, is a [RunInfo].)
type WorkflowInfo struct {
	RunID    string
	Workflow string
	// Epoch counts the times the run continued as new (see
	// [ContinueAsNew]); 0 at first.
	Epoch int
	// Positions is how many durable operations the run has made in this
	// epoch so far: its history length, which Config.MaxHistory caps.
	Positions int
	// Replaying reports whether the code is re-running operations that the
	// journal already holds. Use it to silence logs during replay, never
	// to change what the workflow does.
	Replaying bool
}

// WorkflowInfoFrom describes the run of ctx.
func WorkflowInfoFrom(ctx Context) WorkflowInfo {
	x := ctx.executor()
	return WorkflowInfo{
		RunID:     x.id,
		Workflow:  x.run.def.Name(),
		Epoch:     int(x.row.Epoch),
		Positions: int(x.next),
		Replaying: x.replaying(),
	}
}
