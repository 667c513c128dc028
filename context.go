package durable

import (
	"context"
	"errors"
	"time"
)

// Context is what a workflow function receives. It is a context.Context
// whose cancellation is durable and deterministic: Done closes when the
// run's cancellation reaches the workflow, at the same point of the code
// on every replay (see Cancellation in the package docs). It carries no
// values and no deadline. Only the engine makes a Context; it must be used
// by the workflow goroutine only (use [Go] for concurrency).
type Context interface {
	context.Context
	// RunID returns the id of the run.
	RunID() string
	// executor is what the durable operations use.
	executor() *executor
	// canceled returns the error ops on this context return once the run's
	// cancellation was delivered, or nil (always nil when detached).
	canceled() error
	detached() bool
}

type wfContext struct {
	x        *executor
	isDetach bool
}

var _ Context = (*wfContext)(nil)

func (c *wfContext) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *wfContext) Done() <-chan struct{} {
	if c.isDetach {
		return nil
	}
	return c.x.doneCh
}

func (c *wfContext) Err() error {
	if c.isDetach || c.x.delivered == nil {
		return nil
	}
	if errors.Is(c.x.delivered, ErrDeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

func (c *wfContext) Value(any) any       { return nil }
func (c *wfContext) RunID() string       { return c.x.id }
func (c *wfContext) executor() *executor { return c.x }
func (c *wfContext) detached() bool      { return c.isDetach }

func (c *wfContext) canceled() error {
	if c.isDetach {
		return nil
	}
	return c.x.delivered
}

// stepParent returns the parent context of c's steps.
func (x *executor) stepParent(c Context) context.Context {
	if c.detached() {
		return x.e.ctx
	}
	return x.liveContext()
}
