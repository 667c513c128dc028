package durable_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
)

// 50 concurrent SendWithStart calls on one id: one run, which receives
// each message exactly once.
func TestSendWithStartConcurrent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		const callers = 50
		ctx := testCtx(t)
		var starts atomic.Int32
		collect := durable.Define("collect", func(ctx durable.Context, first int) ([]int, error) {
			if _, err := durable.Step(ctx, "started", func(context.Context) (int, error) { starts.Add(1); return 0, nil }); err != nil {
				return nil, err
			}
			got := make([]int, 0, callers)
			for range callers {
				v, err := durable.Receive[int](ctx, "add")
				if err != nil {
					return nil, err
				}
				got = append(got, v)
			}
			return got, nil
		})
		e := open(t, config(collect))
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Go(func() {
				h, err := durable.SendWithStart(ctx, e, collect, "agg", i, "add", i)
				if err == nil && h.ID() != "agg" {
					err = errors.New("handle of " + h.ID())
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		h, err := durable.Attach(ctx, e, collect, "agg")
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		for i, v := range got {
			if v != i {
				t.Fatalf("received %v; want each of 0..%d once", got, callers-1)
			}
		}
		if len(got) != callers {
			t.Fatalf("received %d messages, want %d", len(got), callers)
		}
		page, err := e.List(ctx, durable.ListOptions{Workflow: "collect"})
		if err != nil || len(page.Runs) != 1 || starts.Load() != 1 {
			t.Fatalf("%d runs (%v), first step executed %d times; want 1 run, 1 execution", len(page.Runs), err, starts.Load())
		}
	})
}

// SendWithStart refuses a finished run and another workflow's run, and
// stores nothing then; a bad message stores nothing either.
func TestSendWithStartRefusals(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		echo := durable.Define("echo", func(ctx durable.Context, in string) (string, error) {
			return durable.Receive[string](ctx, "m")
		})
		other := durable.Define("other", func(ctx durable.Context, in string) (string, error) { return in, nil })
		e := open(t, config(echo, other))
		h, err := durable.SendWithStart(ctx, e, echo, "e1", "", "m", "hi")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Result(ctx); err != nil || out != "hi" {
			t.Fatalf("Result = %q, %v", out, err)
		}
		if _, err := durable.SendWithStart(ctx, e, echo, "e1", "", "m", "again"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("to a finished run: %v, want ErrFinished", err)
		}
		if _, err := durable.Run(ctx, e, other, "o1", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.SendWithStart(ctx, e, echo, "o1", "", "m", "hi"); !errors.Is(err, durable.ErrWorkflowMismatch) {
			t.Errorf("to another workflow's run: %v, want ErrWorkflowMismatch", err)
		}
		if _, err := durable.SendWithStart(ctx, e, echo, "e2", "", "m", func() {}); !errors.Is(err, durable.ErrPayload) {
			t.Errorf("unencodable message: %v, want ErrPayload", err)
		}
		if _, err := e.Get(ctx, "e2"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("after a refused message, Get = %v; want ErrNotFound (nothing stored)", err)
		}
	})
}
