package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

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

// With a clock that only the test moves, a sleep interrupted by a restart
// must end exactly at its recorded wake time: a timer that started again
// from zero would never fire, and one that fired early would show in T1.
func TestSleepNotRestartedAfterRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		clock := durabletest.NewClock(base)
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
