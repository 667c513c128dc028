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
	return &wfContext{x: ctx.executor(), isDetach: true}
}

// pendingCancel returns the cancel error an operation on c must deliver now
// (cancellation was requested but not yet delivered), or nil.
func (x *executor) pendingCancel(c Context) error {
	if c.detached() || x.delivered != nil {
		return nil
	}
	return x.s.cancelRequested()
}

// deliverCancel makes cancellation visible to the workflow: Done closes and
// later operations on a cancelable Context return err. Workflow goroutine
// only; called at the position where it happened, live or on replay.
func (x *executor) deliverCancel(err error) {
	if x.delivered != nil {
		return
	}
	if err == nil {
		err = ErrCanceled
	}
	x.delivered = err
	close(x.doneCh)
}

// stepParent returns the parent context of c's steps.
func (x *executor) stepParent(c Context) context.Context {
	if c.detached() {
		return x.e.ctx
	}
	return x.liveContext()
}
