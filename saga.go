package durable

import (
	"context"
	"errors"

	"github.com/durable-go/durable/internal/clip"
)

// Saga collects compensations ("undo" steps) as a workflow makes changes,
// and runs them in reverse order when the workflow fails or is canceled:
//
//	saga := durable.NewSaga(ctx)
//	if _, err := durable.Step(ctx, "charge", charge); err != nil {
//		return saga.Compensate(err)
//	}
//	saga.Add("refund", refund)
//	if _, err := durable.Step(ctx, "reserve", reserve); err != nil {
//		return saga.Compensate(err) // runs refund
//	}
//	saga.Add("release", release)
//
// Each compensation runs as a durable step on [WithoutCancel] of the
// workflow's context, so it runs even after cancellation, is retried by
// its policy, and after a crash is neither lost nor repeated once
// recorded. Add compensations right after the step they undo succeeds:
// replay re-runs the workflow code, so the list is rebuilt the same way.
// A Saga is used by the workflow goroutine only.
type Saga struct {
	ctx  Context
	undo []compensation
}

type compensation struct {
	name string
	fn   func(context.Context) error
	opts []StepOption
}

// NewSaga returns an empty saga for the run of ctx.
func NewSaga(ctx Context) *Saga {
	return &Saga{ctx: WithoutCancel(ctx)}
}

// Add registers fn as the compensation named name. opts apply to its step
// (give it a generous [WithRetry]: a compensation should not give up
// early).
func (s *Saga) Add(name string, fn func(context.Context) error, opts ...StepOption) {
	s.undo = append(s.undo, compensation{name: name, fn: fn, opts: opts})
}

// Compensate runs the registered compensations, last first, each as a
// durable step, and clears them. It returns cause if every compensation
// succeeded; otherwise cause joined with the compensations' errors (an
// error matching each of them). A compensation that fails for good does
// not stop the others.
func (s *Saga) Compensate(cause error) error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		c := s.undo[i]
		_, err := Step(s.ctx, c.name, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.fn(ctx)
		}, c.opts...)
		if err != nil {
			errs = append(errs, errorf("durable: compensation %s: %w", clip.Q(c.name), err))
		}
	}
	s.undo = nil
	if len(errs) == 0 {
		return cause
	}
	return errors.Join(append([]error{cause}, errs...)...)
}
