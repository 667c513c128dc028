package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

type orderError struct{ id int }

func (e *orderError) Error() string { return fmt.Sprintf("order %d rejected", e.id) }

func TestWorkflowErrorFailsRun(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var chargeCalls atomic.Int32
		plain := durable.Define("plain-fail", func(ctx durable.Context, in int) (int, error) {
			if _, err := durable.Step(ctx, "ok", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			return 0, &orderError{id: in}
		})
		stepFail := durable.Define("step-fail", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "charge", func(context.Context) (int, error) {
				chargeCalls.Add(1)
				return 0, retry.Permanent(errors.New("card declined"))
			})
		})
		cfg := config(plain, stepFail)
		e := open(t, cfg)

		check := func(t *testing.T, e *durable.Engine, when string) {
			t.Helper()
			_, err := durable.Run(ctx, e, plain, "pf-1", 7)
			if err == nil || err.Error() != "order 7 rejected" {
				t.Errorf("%s: plain: err = %v; want \"order 7 rejected\"", when, err)
			}
			var rec *durable.RecordedError
			if !errors.As(err, &rec) || rec.Type != "*durable_test.orderError" {
				t.Errorf("%s: plain: err = %#v; want *RecordedError of type *durable_test.orderError", when, err)
			}
			info := mustGet(t, e, "pf-1")
			if info.Status != durable.StatusFailed || info.Err == nil || info.Err.Error() != "order 7 rejected" {
				t.Errorf("%s: plain: Get = %v, %v; want failed, order 7 rejected", when, info.Status, info.Err)
			}

			_, err = durable.Run(ctx, e, stepFail, "sf-1", 1)
			var se *durable.StepError
			if !errors.As(err, &se) {
				t.Fatalf("%s: step: err = %#v; want *StepError", when, err)
			}
			if se.Step != "charge" || se.Attempts != 1 || se.RunID != "sf-1" || se.Workflow != "step-fail" || se.Position != 0 {
				t.Errorf("%s: step: StepError = %+v", when, se)
			}
			if se.Err == nil || se.Err.Error() != "card declined" || !strings.Contains(err.Error(), "card declined") {
				t.Errorf("%s: step: err = %v; want it to carry \"card declined\"", when, err)
			}
			if rec := (*durable.RecordedError)(nil); !errors.As(err, &rec) || !rec.Permanent {
				t.Errorf("%s: step: cause %#v; want a permanent *RecordedError", when, se.Err)
			}
			if info := mustGet(t, e, "sf-1"); info.Status != durable.StatusFailed || !errors.As(info.Err, &se) {
				t.Errorf("%s: step: Get = %v, %#v; want failed with *StepError", when, info.Status, info.Err)
			}
		}
		check(t, e, "live")
		mustClose(t, e)
		check(t, open(t, cfg), "after restart")
		if n := chargeCalls.Load(); n != 1 {
			t.Errorf("a permanent error was retried: %d executions, want 1", n)
		}
	})
}

func TestWorkflowPanic(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("panics", func(ctx durable.Context, in int) (int, error) {
			if _, err := durable.Step(ctx, "fine", func(context.Context) (int, error) { return in, nil }); err != nil {
				return 0, err
			}
			var s []int
			_ = s[in] // an index out of range: a runtime panic in workflow code
			return 0, nil
		})
		check := func(e *durable.Engine, when string) {
			t.Helper()
			_, err := durable.Run(ctx, e, wf, "p-1", 1)
			var pe *durable.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: err = %#v; want *PanicError", when, err)
			}
			if !strings.Contains(pe.Value, "index out of range") || pe.Stack == "" {
				t.Errorf("%s: PanicError{Value: %q, Stack: %d bytes}; want the panic value and a stack", when, pe.Value, len(pe.Stack))
			}
			if !strings.Contains(pe.Stack, "failure_test.go") {
				t.Errorf("%s: stack does not show the workflow code:\n%s", when, pe.Stack)
			}
			info := mustGet(t, e, "p-1")
			if info.Status != durable.StatusFailed || !errors.As(info.Err, &pe) {
				t.Errorf("%s: Get = %v, %#v; want failed with *PanicError", when, info.Status, info.Err)
			}
		}
		e := open(t, config(wf))
		check(e, "live")
		mustClose(t, e)
		check(open(t, config(wf)), "after restart")
	})
}

func TestStepPanicIsRetried(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		policy := durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Millisecond)})
		var always, once atomic.Int32
		wf := durable.Define("step-panics", func(ctx durable.Context, in int) (int, error) {
			v, err := durable.Step(ctx, "flaky", func(context.Context) (int, error) {
				if once.Add(1) == 1 {
					panic("first attempt")
				}
				return in, nil
			}, policy)
			if err != nil {
				return 0, err
			}
			return durable.Step(ctx, "doomed", func(context.Context) (int, error) {
				always.Add(1)
				panic(fmt.Sprintf("doomed %d", v))
			}, policy)
		})
		e := open(t, config(wf))
		_, err := durable.Run(ctx, e, wf, "sp-1", 4)
		var se *durable.StepError
		if !errors.As(err, &se) || se.Step != "doomed" || se.Attempts != 2 {
			t.Fatalf("err = %#v; want *StepError of step doomed after 2 attempts", err)
		}
		var pe *durable.PanicError
		if !errors.As(err, &pe) || pe.Value != "doomed 4" || pe.Stack == "" {
			t.Fatalf("err = %v; want a *StepError wrapping *PanicError{Value: \"doomed 4\"} with a stack", err)
		}
		if once.Load() != 2 || always.Load() != 2 {
			t.Errorf("attempts: flaky %d (want 2), doomed %d (want 2)", once.Load(), always.Load())
		}
		if info := mustGet(t, e, "sp-1"); info.Status != durable.StatusFailed {
			t.Errorf("status %v, want failed", info.Status)
		}
	})
}

func TestPayloadTooLarge(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var calls atomic.Int32
		wf := durable.Define("big", func(ctx durable.Context, in string) (string, error) {
			calls.Add(1)
			if in != "small" {
				return in, nil
			}
			// A step result over the limit fails the step.
			_, err := durable.Step(ctx, "huge", func(context.Context) (string, error) {
				return strings.Repeat("y", 4000), nil
			})
			return "", err
		})
		cfg := config(wf)
		cfg.MaxPayloadBytes = 1024
		e := open(t, cfg)

		_, err := durable.Start(ctx, e, wf, "big-1", strings.Repeat("x", 2000))
		if !errors.Is(err, durable.ErrPayloadTooLarge) || !errors.Is(err, durable.ErrPayload) {
			t.Fatalf("Start with a 2000-byte input: err = %v; want ErrPayloadTooLarge (and ErrPayload)", err)
		}
		var pe *durable.PayloadError
		if !errors.As(err, &pe) || pe.Limit != 1024 || pe.Size <= 1024 {
			t.Errorf("err = %#v; want *PayloadError with Size > Limit 1024", err)
		}
		if _, err := e.Get(ctx, "big-1"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Get after refused Start: err = %v; want ErrNotFound (nothing stored)", err)
		}
		if calls.Load() != 0 {
			t.Errorf("workflow executed %d times, want 0", calls.Load())
		}

		_, err = durable.Run(ctx, e, wf, "big-2", "small")
		if !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Errorf("step with a 4000-byte result: err = %v; want ErrPayloadTooLarge", err)
		}
		if info := mustGet(t, e, "big-2"); info.Status != durable.StatusFailed {
			t.Errorf("status %v, want failed", info.Status)
		}

		// A workflow result over the limit fails the run.
		resWF := durable.Define("big-result", func(ctx durable.Context, n int) (string, error) {
			return strings.Repeat("r", n), nil
		})
		_, err = durable.Run(ctx, e, resWF, "big-4", 5000)
		if !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Errorf("a 5000-byte workflow result: err = %v; want ErrPayloadTooLarge", err)
		}
		if info := mustGet(t, e, "big-4"); info.Status != durable.StatusFailed || !errors.Is(info.Err, durable.ErrPayloadTooLarge) {
			t.Errorf("Get = %v, %v; want failed with ErrPayloadTooLarge", info.Status, info.Err)
		}

		// A message over the limit is refused and not stored.
		recvWF := durable.Define("big-recv", func(ctx durable.Context, in int) (int, error) {
			return durable.Receive[int](ctx, "c")
		})
		h, err := durable.Start(ctx, e, recvWF, "big-5", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, e, h.ID(), "c", strings.Repeat("m", 2000)); !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Errorf("Send of a 2000-byte message: err = %v; want ErrPayloadTooLarge", err)
		}
		if err := durable.Send(ctx, e, h.ID(), "c", 7); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 7 {
			t.Errorf("Result = %v, %v; want 7 (the refused message was not stored)", got, err)
		}
	})
}

type withChan struct {
	Name string
	C    chan int
}

type node struct {
	Val  int
	Next *node
}

func TestUnencodableInput(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		chanWF := durable.Define("chan-input", func(ctx durable.Context, in withChan) (int, error) { return 0, nil })
		cycleWF := durable.Define("cycle-input", func(ctx durable.Context, in *node) (int, error) { return 0, nil })
		recvWF := durable.Define("recv-any", func(ctx durable.Context, in int) (int, error) {
			return durable.Receive[int](ctx, "never")
		})
		e := open(t, config(chanWF, cycleWF, recvWF))
		cyc := &node{Val: 1}
		cyc.Next = &node{Val: 2, Next: cyc}

		try := func(name string, fn func() error) {
			t.Helper()
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- fmt.Errorf("panic: %v", p)
					}
				}()
				done <- fn()
			}()
			err := recv(t, done, name)
			if !errors.Is(err, durable.ErrPayload) {
				t.Errorf("%s: err = %v; want ErrPayload", name, err)
			}
		}
		try("chan field", func() error {
			_, err := durable.Start(ctx, e, chanWF, "chan-1", withChan{Name: "x", C: make(chan int)})
			return err
		})
		try("pointer cycle", func() error {
			_, err := durable.Start(ctx, e, cycleWF, "cycle-1", cyc)
			return err
		})
		for _, id := range []string{"chan-1", "cycle-1"} {
			if _, err := e.Get(ctx, id); !errors.Is(err, durable.ErrNotFound) {
				t.Errorf("Get(%q): err = %v; want ErrNotFound (nothing stored)", id, err)
			}
		}
		h, err := durable.Start(ctx, e, recvWF, "recv-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		try("Send of a cycle", func() error { return durable.Send(ctx, e, h.ID(), "never", cyc) })
		try("Send of a chan", func() error { return durable.Send(ctx, e, h.ID(), "never", make(chan int)) })
	})
}

func TestCloseRejectsNewWork(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		entered := make(chan struct{}, 1)
		wf := durable.Define("pending", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "wait", func(sctx context.Context) (int, error) {
				signal(entered)
				return 0, blockUntilDone(sctx)
			})
		})
		e := open(t, config(wf))
		h, err := durable.Start(ctx, e, wf, "pend-1", 1)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step to start")
		waiting := make(chan error, 1)
		go func() {
			_, err := h.Result(ctx)
			waiting <- err
		}()
		mustClose(t, e)
		if err := recv(t, waiting, "Result of a pending handle after Close"); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Result waiting across Close: err = %v; want ErrClosed", err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Result after Close: err = %v; want ErrClosed", err)
		}
		if _, err := durable.Start(ctx, e, wf, "pend-2", 1); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Start after Close: err = %v; want ErrClosed", err)
		}
		if _, err := durable.Run(ctx, e, wf, "", 1); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Run after Close: err = %v; want ErrClosed", err)
		}
		if err := durable.Send(ctx, e, "pend-1", "c", 1); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Send after Close: err = %v; want ErrClosed", err)
		}
		if err := e.Cancel(ctx, "pend-1"); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Cancel after Close: err = %v; want ErrClosed", err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// The run was stopped, not failed.
		e2 := open(t, nil)
		if info := mustGet(t, e2, "pend-1"); info.Status != durable.StatusParked && info.Status != durable.StatusRunning {
			t.Errorf("after Close the run is %v; want running (or parked: not registered in the new engine)", info.Status)
		}
	})
}

func TestCloseAbandonsStepThatIgnoresContext(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var firstCalls, stuckCalls atomic.Int32
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		returned := make(chan struct{})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		wf := durable.Define("stubborn", func(ctx durable.Context, in int) (string, error) {
			if _, err := durable.Step(ctx, "first", func(context.Context) (int, error) { firstCalls.Add(1); return 1, nil }); err != nil {
				return "", err
			}
			return durable.Step(ctx, "stuck", func(context.Context) (string, error) {
				if stuckCalls.Add(1) == 1 {
					signal(entered)
					<-release // ignores its context
					close(returned)
					return "old", nil
				}
				return "new", nil
			})
		})
		cfg := config(wf)
		cfg.ShutdownTimeout = 200 * time.Millisecond
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "stub-1", 1); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "stuck step to start")

		closed := make(chan error, 1)
		go func() { closed <- e1.Close() }()
		select {
		case err := <-closed:
			t.Logf("Close with a stuck step returned %v", err)
		case <-time.After(waitLimit):
			t.Fatal("Close did not return: ShutdownTimeout is not enforced")
		}

		// The abandoned step returns now; what it returns must never be
		// recorded.
		close(release)
		recv(t, returned, "abandoned step to return")

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "stub-1", 1)
		if err != nil || got != "new" {
			t.Fatalf("Run after restart = %q, %v; want \"new\" (the abandoned attempt's result must not be recorded)", got, err)
		}
		if firstCalls.Load() != 1 || stuckCalls.Load() != 2 {
			t.Errorf("executions first=%d stuck=%d; want 1, 2", firstCalls.Load(), stuckCalls.Load())
		}
	})
}

type sharedPair struct {
	Left, Right *node
	Any         []any
}

// A value that shares a pointer in two places is not a cycle.
func TestPayloadSharedPointersAreNotCycles(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("shared", func(ctx durable.Context, in sharedPair) (int, error) {
			return in.Left.Val + in.Right.Val + len(in.Any), nil
		})
		e := open(t, config(wf))
		n := &node{Val: 20, Next: &node{Val: 1}}
		m := map[string]any{"k": []int{1}}
		got, err := durable.Run(ctx, e, wf, "sh-1", sharedPair{Left: n, Right: n, Any: []any{m, m, n, n}})
		if err != nil || got != 44 {
			t.Fatalf("Run = %v, %v; want 44", got, err)
		}
	})
}
