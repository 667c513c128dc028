package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// waitLimit bounds every wait of these tests: a condition that is not met
// by then is a failure (a hang), never a timing assertion.
const waitLimit = 10 * time.Second

// opener opens a new engine on the test's store. Calling it again after
// Close of the previous engine simulates a restart: the memory variant
// shares one journal.Memory, the bolt variant reopens one file. Every engine
// is closed at the end of the test.
type opener func(t *testing.T, cfg *durable.Config) *durable.Engine

// forEachStore runs fn once with a memory store and once with a bbolt file,
// in parallel subtests.
func forEachStore(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		store := journal.NewMemory()
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			e, err := durable.New(store, quiet(cfg))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
	t.Run("bolt", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "journal.db")
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			e, err := durable.Open(path, quiet(cfg))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
	// Every behaviour again with a run cache of one: every run that waits
	// is evicted as soon as another waits, and replayed when woken. The
	// results must not change, and no recorded step may run again.
	t.Run("memory-cache1", func(t *testing.T) {
		t.Parallel()
		store := journal.NewMemory()
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			c := quiet(cfg)
			if c.MaxCachedRuns == 0 {
				c.MaxCachedRuns = 1
			}
			e, err := durable.New(store, c)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
}

// quiet returns a copy of cfg whose engine does not log (parked runs and
// abandoned steps are expected here).
func quiet(cfg *durable.Config) *durable.Config {
	var c durable.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &c
}

func config(wfs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: wfs}
}

// testCtx bounds the calls of a test that wait for runs.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStatus waits until run id has status st and returns its info.
func waitStatus(t *testing.T, e *durable.Engine, id string, st durable.Status) durable.RunInfo {
	t.Helper()
	var info durable.RunInfo
	var err error
	waitFor(t, fmt.Sprintf("run %q to be %v", id, st), func() bool {
		info, err = e.Get(context.Background(), id)
		return err == nil && info.Status == st
	})
	return info
}

func mustGet(t *testing.T, e *durable.Engine, id string) durable.RunInfo {
	t.Helper()
	info, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return info
}

func mustClose(t *testing.T, e *durable.Engine) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	if err := recv(t, done, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// signal sends on ch without blocking: ch is buffered for the signals a
// test expects, extra ones are dropped.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// blockUntilDone blocks a step until its context ends and returns the
// context's error.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestRunReturnsResult(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		var calls atomic.Int32
		add := durable.Define("add", func(ctx durable.Context, in [2]int) (int, error) {
			return durable.Step(ctx, "sum", func(context.Context) (int, error) {
				calls.Add(1)
				return in[0] + in[1], nil
			})
		})
		e := open(t, config(add))
		got, err := durable.Run(testCtx(t), e, add, "add-1", [2]int{2, 3})
		if err != nil || got != 5 {
			t.Fatalf("Run = %v, %v; want 5, nil", got, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("step executed %d times, want 1", n)
		}
		if info := mustGet(t, e, "add-1"); info.Status != durable.StatusCompleted || info.Err != nil {
			t.Errorf("Get = %v, %v; want completed, nil", info.Status, info.Err)
		}
	})
}

func TestStartExistingIDNeverExecutesTwice(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var calls atomic.Int32
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		wf := durable.Define("once", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				calls.Add(1)
				signal(entered)
				select {
				case <-release:
				case <-sctx.Done():
					return 0, sctx.Err()
				}
				return in * 10, nil
			})
		})
		e := open(t, config(wf))

		// A second Start while the run is executing attaches to it.
		h1, err := durable.Start(ctx, e, wf, "once-1", 1)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step to start")
		h2, err := durable.Start(ctx, e, wf, "once-1", 2)
		if err != nil {
			t.Fatal(err)
		}
		if h2.ID() != "once-1" || h1.ID() != "once-1" {
			t.Fatalf("handle ids %q, %q; want once-1", h1.ID(), h2.ID())
		}
		close(release)
		for i, h := range []*durable.Handle[int]{h1, h2} {
			if got, err := h.Result(ctx); err != nil || got != 10 {
				t.Errorf("handle %d: Result = %v, %v; want 10 (input of the first Start), nil", i+1, got, err)
			}
		}

		// A Start of a finished run returns it, with its original result.
		if got, err := durable.Run(ctx, e, wf, "once-1", 3); err != nil || got != 10 {
			t.Errorf("Run of finished id = %v, %v; want 10, nil", got, err)
		}
		mustClose(t, e)

		// And so does one after a restart.
		e2 := open(t, config(wf))
		if got, err := durable.Run(ctx, e2, wf, "once-1", 4); err != nil || got != 10 {
			t.Errorf("Run after restart = %v, %v; want 10, nil", got, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("step executed %d times, want 1", n)
		}
	})
}

func TestConcurrentStartOneID(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var runs, a, b atomic.Int32
		wf := durable.Define("concurrent", func(ctx durable.Context, in int) (int, error) {
			runs.Add(1) // the workflow function: once per execution (no restart here)
			x, err := durable.Step(ctx, "a", func(context.Context) (int, error) { a.Add(1); return in, nil })
			if err != nil {
				return 0, err
			}
			return durable.Step(ctx, "b", func(context.Context) (int, error) { b.Add(1); return x + 1000, nil })
		})
		// Not in Config: the first Start registers it, concurrently with
		// the others.
		e := open(t, nil)

		const n = 50
		start := make(chan struct{})
		results := make([]int, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				h, err := durable.Start(ctx, e, wf, "same", i)
				if err != nil {
					errs[i] = err
					return
				}
				if h.ID() != "same" {
					errs[i] = fmt.Errorf("handle id %q", h.ID())
					return
				}
				results[i], errs[i] = h.Result(ctx)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("goroutine %d: %v", i, err)
			}
		}
		for i, r := range results {
			if r != results[0] || r < 1000 || r >= 1000+n {
				t.Fatalf("results differ or are wrong: [0]=%d [%d]=%d", results[0], i, r)
			}
		}
		if runs.Load() != 1 || a.Load() != 1 || b.Load() != 1 {
			t.Errorf("executions: workflow %d, step a %d, step b %d; want 1 each", runs.Load(), a.Load(), b.Load())
		}
		page, err := e.List(ctx, durable.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 1 || page.Runs[0].ID != "same" || page.Runs[0].Status != durable.StatusCompleted {
			t.Errorf("List = %+v; want one completed run \"same\"", page.Runs)
		}
	})
}

func TestStartEmptyIDIsUnique(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("anon", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "echo", func(context.Context) (string, error) { return in, nil })
		})
		e := open(t, config(wf))
		seen := map[string]bool{}
		for i := range 5 {
			h, err := durable.Start(ctx, e, wf, "", fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			if h.ID() == "" || seen[h.ID()] {
				t.Fatalf("Start with empty id gave id %q (seen before: %v)", h.ID(), seen[h.ID()])
			}
			seen[h.ID()] = true
			if got, err := h.Result(ctx); err != nil || got != fmt.Sprint(i) {
				t.Errorf("Result = %q, %v; want %q", got, err, fmt.Sprint(i))
			}
			if info := mustGet(t, e, h.ID()); info.ID != h.ID() || info.Workflow != "anon" {
				t.Errorf("Get(%q) = %+v", h.ID(), info)
			}
		}
	})
}

func TestStartWorkflowMismatch(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var otherCalls atomic.Int32
		one := durable.Define("one", func(ctx durable.Context, in int) (int, error) { return in, nil })
		other := durable.Define("other", func(ctx durable.Context, in int) (int, error) {
			otherCalls.Add(1)
			return in, nil
		})
		e := open(t, config(one, other))
		if _, err := durable.Run(ctx, e, one, "m-1", 1); err != nil {
			t.Fatal(err)
		}
		_, err := durable.Start(ctx, e, other, "m-1", 2)
		if !errors.Is(err, durable.ErrWorkflowMismatch) {
			t.Fatalf("Start with another workflow: err = %v; want ErrWorkflowMismatch", err)
		}
		mustClose(t, e)
		e2 := open(t, config(one, other))
		if _, err := durable.Run(ctx, e2, other, "m-1", 3); !errors.Is(err, durable.ErrWorkflowMismatch) {
			t.Fatalf("after restart: err = %v; want ErrWorkflowMismatch", err)
		}
		if n := otherCalls.Load(); n != 0 {
			t.Errorf("other workflow executed %d times, want 0", n)
		}
		if info := mustGet(t, e2, "m-1"); info.Workflow != "one" || info.Status != durable.StatusCompleted {
			t.Errorf("Get = %+v; want the completed run of \"one\"", info)
		}
	})
}

func TestRestartMidRun(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var n1, n2, n3, n4 atomic.Int32
		var block, sawCancel atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		attempts := make(chan int, 4)
		wf := durable.Define("restart", func(ctx durable.Context, in int) (int, error) {
			a, err := durable.Step(ctx, "one", func(context.Context) (int, error) { n1.Add(1); return in + 1, nil })
			if err != nil {
				return 0, err
			}
			b, err := durable.Step(ctx, "two", func(context.Context) (int, error) { n2.Add(1); return a * 10, nil })
			if err != nil {
				return 0, err
			}
			c, err := durable.Step(ctx, "three", func(sctx context.Context) (int, error) {
				n3.Add(1)
				info, _ := durable.StepInfoFrom(sctx)
				attempts <- info.Attempt
				if block.Load() {
					signal(entered)
					<-sctx.Done()
					sawCancel.Store(true)
					return 0, sctx.Err()
				}
				return b + 5, nil
			})
			if err != nil {
				return 0, err
			}
			return durable.Step(ctx, "four", func(context.Context) (int, error) { n4.Add(1); return c * 2, nil })
		})
		cfg := config(wf)
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "r-1", 1); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step three to start")
		mustClose(t, e1)
		if !sawCancel.Load() {
			t.Error("Close did not cancel the running step's context")
		}
		block.Store(false)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "r-1", 1)
		if want := ((1+1)*10 + 5) * 2; err != nil || got != want {
			t.Fatalf("Run after restart = %v, %v; want %d, nil", got, err, want)
		}
		if n1.Load() != 1 || n2.Load() != 1 || n3.Load() != 2 || n4.Load() != 1 {
			t.Errorf("executions one=%d two=%d three=%d four=%d; want 1, 1, 2 (interrupted, then again), 1",
				n1.Load(), n2.Load(), n3.Load(), n4.Load())
		}
		// The interrupted attempt was not recorded as a failure: the step
		// ran again as attempt 1.
		if a1, a2 := <-attempts, <-attempts; a1 != 1 || a2 != 1 {
			t.Errorf("attempts of step three: %d then %d; want 1 then 1 (Close recorded the interrupted attempt as failed)", a1, a2)
		}
		if info := mustGet(t, e2, "r-1"); info.Status != durable.StatusCompleted {
			t.Errorf("status %v, want completed", info.Status)
		}
	})
}

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
			if !strings.Contains(pe.Stack, "durable_test.go") {
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

func TestGet(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("get", func(ctx durable.Context, in int) (int, error) { return in, nil })
		e := open(t, config(wf))
		before := time.Now().Add(-time.Second) // slack for clock granularity, not a threshold
		if _, err := durable.Run(ctx, e, wf, "g-1", 1); err != nil {
			t.Fatal(err)
		}
		after := time.Now().Add(time.Second)
		info := mustGet(t, e, "g-1")
		if info.ID != "g-1" || info.Workflow != "get" || info.Status != durable.StatusCompleted || info.Err != nil || info.Parent != "" {
			t.Errorf("Get = %+v", info)
		}
		if info.CreatedAt.Before(before) || info.CreatedAt.After(after) {
			t.Errorf("CreatedAt %v not between %v and %v", info.CreatedAt, before, after)
		}
		if info.UpdatedAt.Before(info.CreatedAt) {
			t.Errorf("UpdatedAt %v before CreatedAt %v", info.UpdatedAt, info.CreatedAt)
		}
		if !info.WakeAt.IsZero() || !info.Deadline.IsZero() || info.CancelRequested {
			t.Errorf("Get = %+v; want no wake time, deadline or cancel request", info)
		}

		_, err := e.Get(ctx, "no-such-run")
		if !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Get of unknown id: err = %v; want ErrNotFound", err)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		type in struct{ Block bool }
		a := durable.Define("list-a", func(ctx durable.Context, in in) (int, error) {
			if in.Block {
				return durable.Step(ctx, "block", func(sctx context.Context) (int, error) { return 0, blockUntilDone(sctx) })
			}
			return 1, nil
		})
		b := durable.Define("list-b", func(ctx durable.Context, in in) (int, error) {
			return 0, errors.New("b fails")
		})
		e := open(t, config(a, b))

		var want []string // every id, sorted
		type job struct {
			id    string
			wf    int // 0: a, 1: b
			block bool
		}
		var jobs []job
		for i := range 250 {
			jobs = append(jobs, job{id: fmt.Sprintf("a-%03d", i)})
		}
		for i := range 20 {
			jobs = append(jobs, job{id: fmt.Sprintf("b-%02d", i), wf: 1})
		}
		for i := range 5 {
			jobs = append(jobs, job{id: fmt.Sprintf("r-%d", i), block: true})
		}
		work := make(chan job)
		errs := make(chan error, len(jobs))
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for j := range work {
					var err error
					switch {
					case j.block:
						_, err = durable.Start(ctx, e, a, j.id, in{Block: true})
					case j.wf == 0:
						_, err = durable.Run(ctx, e, a, j.id, in{})
					default:
						if _, rerr := durable.Run(ctx, e, b, j.id, in{}); rerr == nil {
							err = fmt.Errorf("run %s of list-b did not fail", j.id)
						}
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", j.id, err)
					}
				}
			})
		}
		for _, j := range jobs {
			work <- j
			want = append(want, j.id)
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(want)
		for i := range 5 {
			waitStatus(t, e, fmt.Sprintf("r-%d", i), durable.StatusRunning)
		}

		// listAll pages through opts and checks the pages.
		listAll := func(opts durable.ListOptions) (ids []string, pages int) {
			t.Helper()
			seen := map[string]bool{}
			for {
				page, err := e.List(ctx, opts)
				if err != nil {
					t.Fatalf("List(%+v): %v", opts, err)
				}
				pages++
				if len(page.Runs) > opts.Limit && opts.Limit > 0 {
					t.Fatalf("page of %d runs, limit %d", len(page.Runs), opts.Limit)
				}
				for _, r := range page.Runs {
					if seen[r.ID] {
						t.Fatalf("List visited %q twice", r.ID)
					}
					seen[r.ID] = true
					if opts.Status != 0 && r.Status != opts.Status {
						t.Errorf("List(status %v) gave %q with status %v", opts.Status, r.ID, r.Status)
					}
					if opts.Workflow != "" && r.Workflow != opts.Workflow {
						t.Errorf("List(workflow %q) gave %q of %q", opts.Workflow, r.ID, r.Workflow)
					}
					ids = append(ids, r.ID)
				}
				if page.NextAfter == "" {
					return ids, pages
				}
				if len(page.Runs) == 0 || page.NextAfter != page.Runs[len(page.Runs)-1].ID {
					t.Fatalf("NextAfter %q is not the last id of the page", page.NextAfter)
				}
				opts.After = page.NextAfter
				if pages > 1000 {
					t.Fatal("List does not end")
				}
			}
		}

		all, pages := listAll(durable.ListOptions{Limit: 100})
		if !slices.Equal(all, want) {
			t.Errorf("paging over all runs visited %d ids (%d pages); want the %d ids in order", len(all), pages, len(want))
		}
		if pages != 3 {
			t.Errorf("%d pages of 100 for %d runs; want 3", pages, len(want))
		}
		completed, pages := listAll(durable.ListOptions{Status: durable.StatusCompleted, Workflow: "list-a", Limit: 50})
		if len(completed) != 250 || completed[0] != "a-000" || completed[249] != "a-249" || pages != 5 {
			t.Errorf("completed list-a runs: %d in %d pages; want 250 in exactly 5 pages of 50", len(completed), pages)
		}
		if failed, _ := listAll(durable.ListOptions{Status: durable.StatusFailed, Limit: 100}); len(failed) != 20 || failed[0] != "b-00" {
			t.Errorf("failed runs: %v; want the 20 list-b runs", failed)
		}
		if bs, _ := listAll(durable.ListOptions{Workflow: "list-b", Limit: 7}); len(bs) != 20 {
			t.Errorf("list-b runs: %d; want 20", len(bs))
		}
		if running, _ := listAll(durable.ListOptions{Status: durable.StatusRunning, Workflow: "list-a", Limit: 100}); !slices.Equal(running, []string{"r-0", "r-1", "r-2", "r-3", "r-4"}) {
			t.Errorf("running runs: %v", running)
		}
		if none, _ := listAll(durable.ListOptions{Status: durable.StatusCanceled, Limit: 100}); len(none) != 0 {
			t.Errorf("canceled runs: %v; want none", none)
		}
		// Default page size.
		page, err := e.List(ctx, durable.ListOptions{})
		if err != nil || len(page.Runs) != 100 || page.NextAfter != page.Runs[99].ID {
			t.Errorf("List with zero options: %d runs, NextAfter %q, err %v; want a page of 100", len(page.Runs), page.NextAfter, err)
		}
	})
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        durable.Status
		want     string
		terminal bool
	}{
		{durable.StatusRunning, "running", false},
		{durable.StatusParked, "parked", false},
		{durable.StatusCompleted, "completed", true},
		{durable.StatusFailed, "failed", true},
		{durable.StatusCanceled, "canceled", true},
		{durable.Status(0), "status(0)", false},
		{durable.Status(42), "status(42)", false},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", tc.s, got, tc.want)
		}
		if got := tc.s.Terminal(); got != tc.terminal {
			t.Errorf("Status(%d).Terminal() = %v, want %v", tc.s, got, tc.terminal)
		}
	}
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

func TestFuturesResultsInCallOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var mu sync.Mutex
		var finished []int
		wf := durable.Define("fan", func(ctx durable.Context, n int) ([]int, error) {
			// Item i waits for item i+1: they finish in reverse call order.
			done := make([]chan struct{}, n+1)
			for i := range done {
				done[i] = make(chan struct{})
			}
			close(done[n])
			futs := make([]*durable.Future[int], n)
			for i := range n {
				futs[i] = durable.Go(ctx, fmt.Sprintf("item-%d", i), func(sctx context.Context) (int, error) {
					select {
					case <-done[i+1]:
					case <-sctx.Done():
						return 0, sctx.Err()
					}
					mu.Lock()
					finished = append(finished, i)
					mu.Unlock()
					close(done[i])
					return i * i, nil
				})
			}
			out := make([]int, n)
			for i, f := range futs {
				v, err := f.Get(ctx)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		})
		e := open(t, config(wf))
		got, err := durable.Run(ctx, e, wf, "fan-1", 8)
		if want := []int{0, 1, 4, 9, 16, 25, 36, 49}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Run = %v, %v; want %v", got, err, want)
		}
		if want := []int{7, 6, 5, 4, 3, 2, 1, 0}; !slices.Equal(finished, want) {
			t.Errorf("items finished in order %v; the test wants %v", finished, want)
		}
	})
}

func TestFuturesRestartMidFanOut(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		const n, half = 20, 10
		var execs [n]atomic.Int32
		var blocked atomic.Int32
		var first atomic.Bool
		first.Store(true)
		reached := make(chan struct{})
		var reachedOnce sync.Once
		wf := durable.Define("fan-restart", func(ctx durable.Context, in int) ([]int, error) {
			futs := make([]*durable.Future[int], n)
			for i := range n {
				futs[i] = durable.Go(ctx, fmt.Sprintf("item-%02d", i), func(sctx context.Context) (int, error) {
					execs[i].Add(1)
					if i >= half && first.Load() {
						blocked.Add(1)
						return 0, blockUntilDone(sctx)
					}
					return i*i + in, nil
				})
			}
			out := make([]int, n)
			for i, f := range futs {
				v, err := f.Get(ctx)
				if err != nil {
					return nil, err
				}
				out[i] = v
				if i == half-1 {
					reachedOnce.Do(func() { close(reached) }) // test hook, not durable
				}
			}
			return out, nil
		})
		cfg := config(wf)
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "fr-1", 1000); err != nil {
			t.Fatal(err)
		}
		recv(t, reached, "the first half of the futures to be recorded")
		waitFor(t, "the second half to be executing", func() bool { return blocked.Load() == n-half })
		mustClose(t, e1)
		first.Store(false)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "fr-1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got[i] != i*i+1000 {
				t.Errorf("result[%d] = %d, want %d", i, got[i], i*i+1000)
			}
			want := int32(1)
			if i >= half {
				want = 2
			}
			if c := execs[i].Load(); c != want {
				t.Errorf("item %d executed %d times, want %d", i, c, want)
			}
		}
	})
}

func TestChildWorkflow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var pBefore, pAfter, cOne, cBlock, cDone, childRuns atomic.Int32
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		child := durable.Define("child", func(ctx durable.Context, in int) (int, error) {
			childRuns.Add(1)
			a, err := durable.Step(ctx, "c-one", func(context.Context) (int, error) { cOne.Add(1); return in + 1, nil })
			if err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "c-block", func(sctx context.Context) (int, error) {
				cBlock.Add(1)
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return 0, nil
			}); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "c-done", func(context.Context) (int, error) { cDone.Add(1); return a * 2, nil })
		})
		parent := durable.Define("parent", func(ctx durable.Context, in int) (string, error) {
			if _, err := durable.Step(ctx, "p-before", func(context.Context) (int, error) { pBefore.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			v, err := durable.RunChild(ctx, child, "", in)
			if err != nil {
				return "", err
			}
			return durable.Step(ctx, "p-after", func(context.Context) (string, error) {
				pAfter.Add(1)
				return fmt.Sprintf("child said %d", v), nil
			})
		})
		cfg := config(parent, child)
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, parent, "par-1", 20); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the child to block")

		const childID = "par-1/1" // "<parent id>/<position>": p-before is position 0
		info := mustGet(t, e1, childID)
		if info.Parent != "par-1" || info.Workflow != "child" || info.Status != durable.StatusRunning {
			t.Errorf("Get(child) = %+v; want a running run of child with Parent par-1", info)
		}
		page, err := e1.List(ctx, durable.ListOptions{Parent: "par-1"})
		if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != childID || page.Runs[0].Parent != "par-1" {
			t.Errorf("List(Parent: par-1) = %+v, %v; want the one child", page.Runs, err)
		}
		page, err = e1.List(ctx, durable.ListOptions{Workflow: "child"})
		if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != childID {
			t.Errorf("List(Workflow: child) = %+v, %v; want the one child", page.Runs, err)
		}
		if p := mustGet(t, e1, "par-1"); p.Parent != "" || p.Status != durable.StatusRunning {
			t.Errorf("Get(parent) = %+v", p)
		}
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, parent, "par-1", 20)
		if err != nil || got != "child said 42" {
			t.Fatalf("Run after restart = %q, %v; want \"child said 42\"", got, err)
		}
		if info := mustGet(t, e2, childID); info.Status != durable.StatusCompleted || info.Parent != "par-1" {
			t.Errorf("child after the run: %+v; want completed", info)
		}
		if pBefore.Load() != 1 || cOne.Load() != 1 || cBlock.Load() != 2 || cDone.Load() != 1 || pAfter.Load() != 1 {
			t.Errorf("executions p-before=%d c-one=%d c-block=%d c-done=%d p-after=%d; want 1 1 2 1 1",
				pBefore.Load(), cOne.Load(), cBlock.Load(), cDone.Load(), pAfter.Load())
		}
		if n := childRuns.Load(); n != 2 {
			t.Errorf("child workflow function ran %d times, want 2 (once per engine)", n)
		}
		// The child finished once: its run is not there twice, and no other
		// child was made.
		page, err = e2.List(ctx, durable.ListOptions{Workflow: "child"})
		if err != nil || len(page.Runs) != 1 {
			t.Errorf("List(Workflow: child) after the run = %+v, %v; want one run", page.Runs, err)
		}
	})
}

type sleepTimes struct{ T0, T1 time.Time }

func TestSleepSurvivesRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		const d = 300 * time.Millisecond
		wf := durable.Define("sleeper", func(ctx durable.Context, in int) (sleepTimes, error) {
			t0 := durable.Now(ctx)
			if err := durable.Sleep(ctx, d); err != nil {
				return sleepTimes{}, err
			}
			return sleepTimes{T0: t0, T1: durable.Now(ctx)}, nil
		})
		cfg := config(wf)
		start := time.Now()
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "sl-1", 0); err != nil {
			t.Fatal(err)
		}
		var wake time.Time
		waitFor(t, "the sleep to be journaled", func() bool {
			info, err := e1.Get(ctx, "sl-1")
			wake = info.WakeAt
			return err == nil && !wake.IsZero()
		})
		mustClose(t, e1)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "sl-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if el := got.T1.Sub(got.T0); el < d {
			t.Errorf("the workflow slept %v across the restart, want >= %v", el, d)
		}
		if wake.Sub(got.T0) < d {
			t.Errorf("wake time %v is less than %v after the sleep began (%v)", wake, d, got.T0)
		}
		if got.T1.Before(wake) {
			t.Errorf("the sleep ended at %v, before its wake time %v", got.T1, wake)
		}
		if el := time.Since(start); el < d {
			t.Errorf("the run finished %v after it started, want >= %v", el, d)
		}
	})
}

// fakeClock is a durable.Clock that moves only when the test sets it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
	fired   bool
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		ft.fired = true
		ft.c <- c.now
	} else {
		c.timers = append(c.timers, ft)
	}
	return ft.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !ft.stopped && !ft.fired
		ft.stopped = true
		return was
	}
}

// Set moves the clock to t and fires the timers due by then.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.timers[:0]
	for _, ft := range c.timers {
		switch {
		case ft.stopped:
		case !ft.at.After(t):
			ft.fired = true
			ft.c <- t
		default:
			kept = append(kept, ft)
		}
	}
	c.timers = kept
}

// With a clock that only the test moves, a sleep interrupted by a restart
// must end exactly at its recorded wake time: a timer that started again
// from zero would never fire, and one that fired early would show in T1.
func TestSleepNotRestartedAfterRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		clock := newFakeClock(base)
		wf := durable.Define("long-sleeper", func(ctx durable.Context, in int) (sleepTimes, error) {
			t0 := durable.Now(ctx)
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return sleepTimes{}, err
			}
			return sleepTimes{T0: t0, T1: durable.Now(ctx)}, nil
		})
		cfg := config(wf)
		cfg.Clock = clock
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "ls-1", 0); err != nil {
			t.Fatal(err)
		}
		var wake time.Time
		waitFor(t, "the sleep to be journaled", func() bool {
			info, err := e1.Get(ctx, "ls-1")
			wake = info.WakeAt
			return err == nil && !wake.IsZero()
		})
		if want := base.Add(time.Hour); !wake.Equal(want) {
			t.Fatalf("WakeAt = %v, want %v", wake, want)
		}
		clock.Set(base.Add(20 * time.Minute)) // time passes while it sleeps
		mustClose(t, e1)

		// The process is down past the wake time; the run is due when it
		// opens.
		clock.Set(wake.Add(time.Minute))
		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "ls-1", 0)
		if err != nil {
			t.Fatalf("Run: %v (a sleep restarted from zero would never end on this clock)", err)
		}
		if !got.T0.Equal(base) || !got.T1.Equal(wake.Add(time.Minute)) {
			t.Errorf("slept from %v to %v; want from %v to %v", got.T0, got.T1, base, wake.Add(time.Minute))
		}
	})
}

func TestSendReceive(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		var receives atomic.Int32
		wf := durable.Define("inbox", func(ctx durable.Context, in int) ([]string, error) {
			if _, err := durable.Step(ctx, "hold", func(sctx context.Context) (int, error) {
				signal(entered)
				select {
				case <-release:
				case <-sctx.Done():
					return 0, sctx.Err()
				}
				return 0, nil
			}); err != nil {
				return nil, err
			}
			var got []string
			for range in {
				m, err := durable.Receive[string](ctx, "greet")
				if err != nil {
					return nil, err
				}
				receives.Add(1)
				got = append(got, m)
			}
			return got, nil
		})
		cfg := config(wf)
		e1 := open(t, cfg)
		h, err := durable.Start(ctx, e1, wf, "in-1", 3)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the run to start")
		// Sent before the run receives: stored, not lost.
		if err := durable.Send(ctx, e1, h.ID(), "greet", "hello"); err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, e1, h.ID(), "other", "not for Receive(greet)"); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := durable.Send(ctx, e1, h.ID(), "greet", "bonjour"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "two messages to be received", func() bool { return receives.Load() == 2 })
		mustClose(t, e1)

		// A message sent while no engine runs the workflow is stored too.
		e2 := open(t, nil)
		if err := durable.Send(ctx, e2, "in-1", "greet", "hallo"); err != nil {
			t.Fatal(err)
		}
		mustClose(t, e2)

		e3 := open(t, cfg)
		got, err := durable.Run(ctx, e3, wf, "in-1", 3)
		if want := []string{"hello", "bonjour", "hallo"}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Run = %q, %v; want %q", got, err, want)
		}
		// Receive ran twice before the restart and three times after it
		// (two replayed, one live).
		if n := receives.Load(); n != 5 {
			t.Errorf("Receive returned %d times in all, want 5", n)
		}

		if err := durable.Send(ctx, e3, "in-1", "greet", "late"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Send to a finished run: err = %v; want ErrFinished", err)
		}
		if err := durable.Send(ctx, e3, "nobody", "greet", "hi"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Send to an unknown run: err = %v; want ErrNotFound", err)
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		inStep := make(chan struct{}, 1)
		stepErr := make(chan error, 1)
		var beforeRecv, cleanups atomic.Int32
		cleanupErr := make(chan error, 1)

		step := durable.Define("cancel-step", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "wait", func(sctx context.Context) (int, error) {
				signal(inStep)
				err := blockUntilDone(sctx)
				stepErr <- err
				return 0, err
			})
		})
		sleep := durable.Define("cancel-sleep", func(ctx durable.Context, in int) (int, error) {
			return 0, durable.Sleep(ctx, time.Hour)
		})
		receive := durable.Define("cancel-receive", func(ctx durable.Context, in int) (string, error) {
			if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { beforeRecv.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			return durable.Receive[string](ctx, "never")
		})
		cleanup := durable.Define("cancel-cleanup", func(ctx durable.Context, in int) (int, error) {
			_, err := durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				signal(inStep)
				return 0, blockUntilDone(sctx)
			})
			if errors.Is(err, durable.ErrCanceled) {
				if ctx.Err() == nil {
					return 0, errors.New("Context.Err is nil after the cancellation was delivered")
				}
				if _, cerr := durable.Step(durable.WithoutCancel(ctx), "release", func(sctx context.Context) (int, error) {
					cleanups.Add(1)
					cleanupErr <- sctx.Err()
					return 0, nil
				}); cerr != nil {
					return 0, cerr
				}
			}
			return 0, err
		})
		cfg := config(step, sleep, receive, cleanup)
		e := open(t, cfg)

		checkCanceled := func(e *durable.Engine, h interface {
			ID() string
		}, err error, when string) {
			t.Helper()
			if !errors.Is(err, durable.ErrCanceled) || !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %s: err = %v; want ErrCanceled and context.Canceled", when, h.ID(), err)
			}
			info := mustGet(t, e, h.ID())
			if info.Status != durable.StatusCanceled || !info.CancelRequested || !errors.Is(info.Err, durable.ErrCanceled) {
				t.Errorf("%s: %s: Get = %v (cancel requested %v), %v; want canceled", when, h.ID(), info.Status, info.CancelRequested, info.Err)
			}
		}

		// In a step.
		hs, err := durable.Start(ctx, e, step, "c-step", 0)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, inStep, "the step to start")
		if err := e.Cancel(ctx, hs.ID()); err != nil {
			t.Fatal(err)
		}
		_, err = hs.Result(ctx)
		checkCanceled(e, hs, err, "in a step")
		if serr := recv(t, stepErr, "the step to see the cancellation"); !errors.Is(serr, context.Canceled) {
			t.Errorf("the step's context ended with %v; want context.Canceled", serr)
		}

		// Sleeping.
		hz, err := durable.Start(ctx, e, sleep, "c-sleep", 0)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the sleep to be journaled", func() bool { return !mustGet(t, e, hz.ID()).WakeAt.IsZero() })
		if err := e.Cancel(ctx, hz.ID()); err != nil {
			t.Fatal(err)
		}
		_, err = hz.Result(ctx)
		checkCanceled(e, hz, err, "sleeping")

		// Receiving.
		hr, err := durable.Start(ctx, e, receive, "c-recv", 0)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the step before Receive", func() bool { return beforeRecv.Load() == 1 })
		if err := e.Cancel(ctx, hr.ID()); err != nil {
			t.Fatal(err)
		}
		_, err = hr.Result(ctx)
		checkCanceled(e, hr, err, "receiving")

		// Cleanup after cancellation.
		hc, err := durable.Start(ctx, e, cleanup, "c-clean", 0)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, inStep, "the step to start")
		if err := e.Cancel(ctx, hc.ID()); err != nil {
			t.Fatal(err)
		}
		_, err = hc.Result(ctx)
		checkCanceled(e, hc, err, "with cleanup")
		if n := cleanups.Load(); n != 1 {
			t.Errorf("cleanup step ran %d times, want 1", n)
		} else if cerr := <-cleanupErr; cerr != nil {
			t.Errorf("the cleanup step's context is done (%v); WithoutCancel steps must not be canceled", cerr)
		}

		// Cancel again, and of finished or unknown runs.
		if err := e.Cancel(ctx, hs.ID()); err != nil {
			t.Errorf("Cancel of a canceled run: %v; want nil", err)
		}
		done := durable.Define("cancel-done", func(ctx durable.Context, in int) (int, error) { return in, nil })
		if _, err := durable.Run(ctx, e, done, "c-done", 1); err != nil {
			t.Fatal(err)
		}
		if err := e.Cancel(ctx, "c-done"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Cancel of a completed run: err = %v; want ErrFinished", err)
		}
		if err := e.Cancel(ctx, "nobody"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Cancel of an unknown run: err = %v; want ErrNotFound", err)
		}

		// The outcome survives a restart.
		mustClose(t, e)
		e2 := open(t, cfg)
		_, err = durable.Run(ctx, e2, step, hs.ID(), 0)
		checkCanceled(e2, hs, err, "after restart")
		_, err = durable.Run(ctx, e2, cleanup, hc.ID(), 0)
		checkCanceled(e2, hc, err, "after restart")
		if n := cleanups.Load(); n != 1 {
			t.Errorf("cleanup step ran %d times after restart, want 1", n)
		}
	})
}

// Start of a workflow the engine does not know yet registers it and
// resumes its runs in the background; racing with Close, that must neither
// race (go test -race) nor leave a goroutine Close did not wait for.
func TestStartRacesClose(t *testing.T) {
	t.Parallel()
	for i := range 300 {
		store := journal.NewMemory()
		wf := durable.Define("late", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "wait", func(sctx context.Context) (int, error) { return 0, blockUntilDone(sctx) })
		})
		// A run of wf waits in the store, so registering wf has a run to
		// resume.
		e0, err := durable.New(store, quiet(config(wf)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Start(context.Background(), e0, wf, "waiting", 1); err != nil {
			t.Fatal(err)
		}
		mustClose(t, e0)

		e, err := durable.New(store, quiet(nil))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := durable.Start(context.Background(), e, wf, fmt.Sprint("new-", i), 1)
			if err != nil && !errors.Is(err, durable.ErrClosed) {
				t.Errorf("Start racing Close: %v", err)
			}
		})
		wg.Go(func() { mustClose(t, e) })
		wg.Wait()
	}
}

// The ctx of Run and Result bounds the call only: canceling it leaves the
// run going.
func TestRunContextBoundsOnlyTheCall(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		var stepErr atomic.Value
		wf := durable.Define("bounded", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "slow", func(sctx context.Context) (int, error) {
				signal(entered)
				select {
				case <-release:
				case <-sctx.Done():
					stepErr.Store(sctx.Err())
					return 0, sctx.Err()
				}
				return in + 1, nil
			})
		})
		e := open(t, config(wf))
		callCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := durable.Run(callCtx, e, wf, "b-1", 41)
			errc <- err
		}()
		recv(t, entered, "the step to start")
		cancel()
		if err := recv(t, errc, "Run to return"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run with a canceled ctx: err = %v; want context.Canceled", err)
		}
		if info := mustGet(t, e, "b-1"); info.Status != durable.StatusRunning || info.CancelRequested {
			t.Fatalf("after the caller gave up the run is %v (cancel requested %v); want running", info.Status, info.CancelRequested)
		}
		close(release)
		h, err := durable.Start(ctx, e, wf, "b-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 42 {
			t.Errorf("Result = %v, %v; want 42", got, err)
		}
		if v := stepErr.Load(); v != nil {
			t.Errorf("the step's context was canceled (%v) when the caller's was", v)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	a1 := durable.Define("dup", func(ctx durable.Context, in int) (int, error) { return in, nil })
	a2 := durable.Define("dup", func(ctx durable.Context, in int) (int, error) { return in, nil })
	for _, tc := range []struct {
		name string
		cfg  durable.Config
	}{
		{"duplicate workflow names", durable.Config{Workflows: []durable.Definition{a1, a2}}},
		{"nil workflow", durable.Config{Workflows: []durable.Definition{nil}}},
		{"negative MaxPayloadBytes", durable.Config{MaxPayloadBytes: -1}},
		{"negative ShutdownTimeout", durable.Config{ShutdownTimeout: -time.Second}},
		{"negative limit", durable.Config{Limits: map[string]durable.Limit{"api": {MaxConcurrent: -1}}}},
	} {
		e, err := durable.New(journal.NewMemory(), quiet(&tc.cfg))
		if err == nil {
			e.Close()
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
	if _, err := durable.New(nil, nil); err == nil {
		t.Error("New(nil store) succeeded")
	}
	e, err := durable.New(journal.NewMemory(), nil) // nil Config: defaults
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Another definition under a registered name is refused at Start.
	if _, err := durable.Run(testCtx(t), e, a1, "d-1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(testCtx(t), e, a2, "d-2", 1); err == nil {
		t.Error("Start of a second definition named like a registered one succeeded")
	}
	for _, name := range []string{"", strings.Repeat("x", 513), "\xff"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Define(%q) did not panic", name)
				}
			}()
			durable.Define(name, func(ctx durable.Context, in int) (int, error) { return in, nil })
		}()
	}
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

// A step's idempotency key and position are the same before and after a
// restart.
func TestIdempotencyKeyStableAcrossRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		infos := make(chan durable.StepInfo, 4)
		var first atomic.Bool
		first.Store(true)
		wf := durable.Define("keyed", func(ctx durable.Context, in int) (int, error) {
			if _, err := durable.Step(ctx, "prep", func(context.Context) (int, error) { return 0, nil }); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "pay", func(sctx context.Context) (int, error) {
				info, ok := durable.StepInfoFrom(sctx)
				if !ok {
					return 0, errors.New("no StepInfo in the step's context")
				}
				infos <- info
				if first.Load() {
					return 0, blockUntilDone(sctx)
				}
				return 1, nil
			})
		})
		e1 := open(t, config(wf))
		if _, err := durable.Start(ctx, e1, wf, "key-1", 0); err != nil {
			t.Fatal(err)
		}
		i1 := recv(t, infos, "the first attempt")
		mustClose(t, e1)
		first.Store(false)
		e2 := open(t, config(wf))
		if _, err := durable.Run(ctx, e2, wf, "key-1", 0); err != nil {
			t.Fatal(err)
		}
		i2 := recv(t, infos, "the second execution")
		want := durable.StepInfo{RunID: "key-1", Workflow: "keyed", Step: "pay", Position: 1, Attempt: 1, IdempotencyKey: "key-1/1"}
		if i1 != want || i2 != want {
			t.Errorf("StepInfo before the restart %+v, after %+v; want both %+v", i1, i2, want)
		}
		if _, ok := durable.StepInfoFrom(context.Background()); ok {
			t.Error("StepInfoFrom found info in a plain context")
		}
	})
}

// Every timestamp of a run comes from Config.Clock: CreatedAt as well as
// UpdatedAt and WakeAt, for top-level runs as for children. Otherwise a
// clock behind the system's makes a run updated before it was created.
func TestRunTimestampsFollowConfigClock(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		clock := newFakeClock(base)
		child := durable.Define("ts-child", func(ctx durable.Context, in int) (int, error) { return in, nil })
		wf := durable.Define("ts", func(ctx durable.Context, in int) (int, error) {
			if _, err := durable.RunChild(ctx, child, "ts-kid", in); err != nil {
				return 0, err
			}
			return in, durable.Sleep(ctx, time.Hour)
		})
		cfg := config(wf, child)
		cfg.Clock = clock
		e := open(t, cfg)
		if _, err := durable.Start(ctx, e, wf, "ts-1", 1); err != nil {
			t.Fatal(err)
		}
		info := waitStatus(t, e, "ts-kid", durable.StatusCompleted)
		if !info.CreatedAt.Equal(base) || !info.UpdatedAt.Equal(base) {
			t.Errorf("child: CreatedAt %v, UpdatedAt %v; want both %v (Config.Clock)", info.CreatedAt, info.UpdatedAt, base)
		}
		waitFor(t, "the sleep to be journaled", func() bool { return !mustGet(t, e, "ts-1").WakeAt.IsZero() })
		info = mustGet(t, e, "ts-1")
		if !info.WakeAt.Equal(base.Add(time.Hour)) || !info.UpdatedAt.Equal(base) {
			t.Errorf("WakeAt %v, UpdatedAt %v; want %v and %v", info.WakeAt, info.UpdatedAt, base.Add(time.Hour), base)
		}
		if !info.CreatedAt.Equal(base) {
			t.Errorf("top-level run: CreatedAt %v (the system clock), UpdatedAt %v; want CreatedAt %v from Config.Clock", info.CreatedAt, info.UpdatedAt, base)
		}
	})
}

// After a restart an engine that lists only the parent workflow finds the
// child's workflow through the parent's code: the child, parked at Open as
// unregistered, resumes when the parent's replay reaches RunChild.
func TestChildResumesWhenOnlyParentRegistered(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		var childSteps atomic.Int32
		child := durable.Define("only-child", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				childSteps.Add(1)
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return in * 3, nil
			})
		})
		parent := durable.Define("only-parent", func(ctx durable.Context, in int) (int, error) {
			return durable.RunChild(ctx, child, "oc-kid", in)
		})
		e1 := open(t, config(parent, child))
		if _, err := durable.Start(ctx, e1, parent, "op-1", 5); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the child to block")
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, config(parent))
		got, err := durable.Run(ctx, e2, parent, "op-1", 5)
		if err != nil || got != 15 {
			t.Fatalf("Run = %v, %v; want 15", got, err)
		}
		info := waitStatus(t, e2, "oc-kid", durable.StatusCompleted)
		if info.Err != nil {
			t.Errorf("child: %v", info.Err)
		}
		if n := childSteps.Load(); n != 2 {
			t.Errorf("child step executed %d times, want 2", n)
		}
	})
}

// Starts of a run that Open is recovering attach to it: one execution.
func TestConcurrentStartDuringRecovery(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		var before, work, after atomic.Int32
		wf := durable.Define("recovering", func(ctx durable.Context, in int) (int, error) {
			if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { before.Add(1); return 0, nil }); err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				work.Add(1)
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return 0, nil
			}); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "after", func(context.Context) (int, error) { after.Add(1); return in, nil })
		})
		// Several runs, so recovery has a queue.
		const runs = 8
		e1 := open(t, config(wf))
		for i := range runs {
			if _, err := durable.Start(ctx, e1, wf, fmt.Sprint("rec-", i), i); err != nil {
				t.Fatal(err)
			}
			recv(t, entered, "a run to block")
		}
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, config(wf))
		var wg sync.WaitGroup
		for g := range 40 {
			wg.Go(func() {
				id := g % runs
				got, err := durable.Run(ctx, e2, wf, fmt.Sprint("rec-", id), 100)
				if err != nil || got != id {
					t.Errorf("Run(rec-%d) = %v, %v; want %d (the first input)", id, got, err, id)
				}
			})
		}
		wg.Wait()
		if before.Load() != runs || work.Load() != 2*runs || after.Load() != runs {
			t.Errorf("executions before=%d work=%d after=%d; want %d, %d, %d", before.Load(), work.Load(), after.Load(), runs, 2*runs, runs)
		}
	})
}
