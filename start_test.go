package durable_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

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

// Every timestamp of a run comes from Config.Clock: CreatedAt as well as
// UpdatedAt and WakeAt, for top-level runs as for children. Otherwise a
// clock behind the system's makes a run updated before it was created.
func TestRunTimestampsFollowConfigClock(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		clock := durabletest.NewClock(base)
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
