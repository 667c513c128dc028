package durable_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// Every call into user code must be recovered, wherever the engine makes
// it: a panic there must become a failed attempt, a failed run or a
// parked run, never a dead process. These tests would kill the test
// binary without that.

// panicError is an error whose Error method panics.
type panicError struct{}

func (panicError) Error() string { panic("Error() panics") }

// panicBackoff is a backoff.Backoff whose Delay panics.
type panicBackoff struct{}

func (panicBackoff) Delay(int) time.Duration { panic("Delay panics") }

func TestPanicInWorkflowErrorMethodFailsRun(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("bad-error", func(ctx durable.Context, _ int) (int, error) {
			return 0, panicError{}
		})
		e := open(t, config(wf))
		_, err := durable.Run(ctx, e, wf, "be-1", 0)
		var pe *durable.PanicError
		if !errors.As(err, &pe) || pe.Stack == "" {
			t.Fatalf("Run = %#v; want a *PanicError with a stack", err)
		}
		if info := mustGet(t, e, "be-1"); info.Status != durable.StatusFailed {
			t.Errorf("status = %v; want failed", info.Status)
		}
	})
}

func TestPanicInUserCodeOfAFuture(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy retry.Policy
		err    error
	}{
		{"Retryable", retry.Policy{Retryable: func(error) bool { panic("Retryable panics") }}, errors.New("step failed")},
		{"Backoff.Delay", retry.Policy{Backoff: panicBackoff{}}, errors.New("step failed")},
		{"step error's Error", retry.Policy{MaxAttempts: 2, Backoff: constant(0)}, panicError{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			step := func(context.Context) (int, error) { return 0, c.err }
			wf := durable.Define("future-"+c.name, func(ctx durable.Context, _ int) (int, error) {
				f := durable.Go(ctx, "s", step, durable.WithRetry(c.policy))
				_, err := f.Get(ctx)
				var pe *durable.PanicError
				var se *durable.StepError
				if !errors.As(err, &se) || !errors.As(err, &pe) {
					return 0, retry.Permanent(errors.New("future: want a *StepError with a *PanicError"))
				}
				_, err = durable.Step(ctx, "s2", step, durable.WithRetry(c.policy))
				if !errors.As(err, &se) || !errors.As(err, &pe) {
					return 0, retry.Permanent(errors.New("step: want a *StepError with a *PanicError"))
				}
				return 1, nil
			})
			e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got, err := durable.Run(ctx, e, wf, "f-1", 0); err != nil || got != 1 {
				t.Fatalf("Run = %v, %v; want 1, nil", got, err)
			}
		})
	}
}

// panicClock is a Clock that panics once armed.
type panicClock struct{ armed chan struct{} }

func (c panicClock) Now() time.Time {
	select {
	case <-c.armed:
		panic("Clock.Now panics")
	default:
		return time.Now()
	}
}

func (c panicClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	select {
	case <-c.armed:
		panic("Clock.TimerAt panics")
	default:
		t := time.NewTimer(time.Until(at))
		return t.C, t.Stop
	}
}

func TestPanicInClockDoesNotCrash(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		clock := panicClock{armed: make(chan struct{})}
		wf := durable.Define("clock", func(ctx durable.Context, _ int) (int, error) {
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return 0, err
			}
			_ = durable.Now(ctx)
			return 1, nil
		})
		e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf}, Clock: clock}))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		close(clock.armed) // the timer loop and the run now meet a panicking clock
		if got, err := durable.Run(context.Background(), e, wf, "c-1", 0); err != nil || got != 1 {
			t.Fatalf("Run = %v, %v; want 1, nil", got, err)
		}
	})
}

// constant is a backoff.Backoff of a fixed delay.
type constant time.Duration

func (c constant) Delay(int) time.Duration { return time.Duration(c) }
