package durable_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// Retention tests: finished runs (and the journals of ended epochs) are
// deleted a retention period after they finished, never unfinished ones;
// Engine.Purge does it on demand; the bbolt file reuses the freed pages.
// Helpers shared with continue_test.go are here.

// keep is the retention period of these tests, and interval the
// retention loop's check interval for it: retention.go checks every tenth
// of the period (at least every minute, at most every hour) while runs
// finished within it. A run that finished at F is present until F+keep
// and gone by F+keep+interval.
const (
	keep     = time.Hour
	interval = 6 * time.Minute
)

// gone reports whether run id was deleted.
func gone(t *testing.T, e *durable.Engine, id string) bool {
	t.Helper()
	_, err := e.Get(context.Background(), id)
	if err != nil && !errors.Is(err, durable.ErrNotFound) {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return err != nil
}

// sleepUntil sleeps (in the bubble) until at, then waits for the engine
// to settle.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

// waiter waits for a message on "go" that may never come.
var waiter = durable.Define("rn-waiter", func(ctx durable.Context, _ struct{}) (string, error) {
	return durable.Receive[string](ctx, "go")
})

// A finished run of each terminal status is kept for the retention period
// and deleted by the retention loop within one check interval after it;
// a run that waits for a message that never comes is never deleted.
func TestRetentionDeletesFinishedRuns(t *testing.T) {
	t.Parallel()
	ok := durable.Define("rn-ok", func(ctx durable.Context, _ struct{}) (int, error) {
		return durable.Step(ctx, "one", func(context.Context) (int, error) { return 1, nil })
	})
	fail := durable.Define("rn-fail", func(ctx durable.Context, _ struct{}) (int, error) {
		return 0, errors.New("rn: the workflow fails")
	})
	cfg := &durable.Config{Workflows: []durable.Definition{ok, fail, waiter}, Retention: keep}
	for _, tc := range []struct {
		name   string
		status durable.Status
		// finish makes run "r" finish, in the bubble.
		finish func(t *testing.T, env *storeEnv)
	}{
		{"completed", durable.StatusCompleted, func(t *testing.T, env *storeEnv) {
			if _, err := durable.Run(t.Context(), env.E, ok, "r", struct{}{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"failed", durable.StatusFailed, func(t *testing.T, env *storeEnv) {
			if _, err := durable.Run(t.Context(), env.E, fail, "r", struct{}{}); err == nil {
				t.Fatal("the run did not fail")
			}
		}},
		{"canceled", durable.StatusCanceled, func(t *testing.T, env *storeEnv) {
			h, err := durable.Start(t.Context(), env.E, waiter, "r", struct{}{})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Minute) // not at the engine's start: another phase of the loop
			if err := env.E.Cancel(t.Context(), "r"); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Result(t.Context()); !errors.Is(err, durable.ErrCanceled) {
				t.Fatalf("Result = %v, want ErrCanceled", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			both(t, cfg, func(t *testing.T, env *storeEnv) {
				if _, err := durable.Start(t.Context(), env.E, waiter, "forever", struct{}{}); err != nil {
					t.Fatal(err)
				}
				tc.finish(t, env)
				synctest.Wait()
				info := mustGet(t, env.E, "r")
				if info.Status != tc.status {
					t.Fatalf("status %v, want %v", info.Status, tc.status)
				}
				finished := info.UpdatedAt

				sleepUntil(finished.Add(keep - time.Second))
				if gone(t, env.E, "r") {
					t.Fatalf("run deleted %v after it finished, before the retention period of %v", time.Since(finished), keep)
				}
				sleepUntil(finished.Add(keep + interval + time.Second))
				if !gone(t, env.E, "r") {
					t.Fatalf("run still there %v after it finished (retention %v, check interval %v)", time.Since(finished), keep, interval)
				}
				time.Sleep(30 * 24 * time.Hour)
				if st := mustGet(t, env.E, "forever").Status; st != durable.StatusRunning {
					t.Errorf("waiting run: status %v after 30 days, want running", st)
				}
			})
		})
	}
}

// Running, sleeping and parked runs are never deleted, by the retention
// loop or by Purge, however old they are.
func TestRetentionKeepsUnfinishedRuns(t *testing.T) {
	t.Parallel()
	sleeper := durable.Define("rn-sleeper", func(ctx durable.Context, _ struct{}) (int, error) {
		return 0, durable.Sleep(ctx, 1000*time.Hour)
	})
	lost := durable.Define("rn-lost", func(ctx durable.Context, _ struct{}) (string, error) {
		return durable.Receive[string](ctx, "go")
	})
	done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	cfg := &durable.Config{Workflows: []durable.Definition{waiter, sleeper, lost, done}, Retention: keep}
	both(t, cfg, func(t *testing.T, env *storeEnv) {
		ctx := t.Context()
		for _, start := range []func() error{
			func() error { _, err := durable.Start(ctx, env.E, waiter, "waiting", struct{}{}); return err },
			func() error { _, err := durable.Start(ctx, env.E, sleeper, "sleeping", struct{}{}); return err },
			func() error { _, err := durable.Start(ctx, env.E, lost, "parked", struct{}{}); return err },
			func() error { _, err := durable.Run(ctx, env.E, done, "done", struct{}{}); return err },
		} {
			if err := start(); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		// A deploy without rn-lost: its run waits (running) for an
		// engine that has the workflow.
		env.restart(&durable.Config{Workflows: []durable.Definition{waiter, sleeper, done}, Retention: keep})
		synctest.Wait()

		time.Sleep(3 * 24 * time.Hour)
		synctest.Wait()
		if !gone(t, env.E, "done") {
			t.Error("the finished run was not deleted after 3 days: the retention loop did not run")
		}
		want := map[string]durable.Status{"waiting": durable.StatusRunning, "sleeping": durable.StatusRunning, "parked": durable.StatusRunning}
		check := func(when string) {
			t.Helper()
			for id, st := range want {
				if _, err := env.E.Get(ctx, id); err != nil {
					t.Errorf("%s: run %q: %v", when, id, err)
				} else if got := mustGet(t, env.E, id).Status; got != st {
					t.Errorf("%s: run %q is %v, want %v", when, id, got, st)
				}
			}
		}
		check("after 3 days")
		n, err := env.E.Purge(ctx, time.Now().Add(365*24*time.Hour))
		if err != nil || n != 0 {
			t.Errorf("Purge(in a year) = %d, %v; want 0 (nothing finished is left)", n, err)
		}
		check("after Purge")
	})
}

// A negative Retention keeps finished runs forever; Engine.Purge still
// deletes them when asked.
func TestRetentionNegativeKeepsEverything(t *testing.T) {
	t.Parallel()
	done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	both(t, &durable.Config{Workflows: []durable.Definition{done}, Retention: -1}, func(t *testing.T, env *storeEnv) {
		if _, err := durable.Run(t.Context(), env.E, done, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(365 * 24 * time.Hour)
		synctest.Wait()
		if gone(t, env.E, "r") {
			t.Fatal("run deleted although Retention is negative")
		}
		if n, err := env.E.Purge(t.Context(), time.Now()); err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1", n, err)
		}
		if !gone(t, env.E, "r") {
			t.Error("run still there after Purge")
		}
	})
}

// Engine.Purge deletes what finished strictly before its argument, in as
// many transactions as it takes, and returns the count.
func TestRetentionPurge(t *testing.T) {
	t.Parallel()
	done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	fail := durable.Define("rn-fail", func(ctx durable.Context, _ struct{}) (int, error) {
		return 0, errors.New("rn: the workflow fails")
	})
	cfg := &durable.Config{Workflows: []durable.Definition{done, fail, waiter}, Retention: -1}
	both(t, cfg, func(t *testing.T, env *storeEnv) {
		ctx := t.Context()
		t0 := time.Now()
		for i := range 3 {
			if _, err := durable.Run(ctx, env.E, done, fmt.Sprintf("early-%d", i), struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := durable.Start(ctx, env.E, waiter, "running", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		for i := range 2 {
			if _, err := durable.Run(ctx, env.E, done, fmt.Sprintf("late-%d", i), struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := durable.Run(ctx, env.E, fail, "late-failed", struct{}{}); err == nil {
			t.Fatal("the run did not fail")
		}
		for _, tc := range []struct {
			before time.Time
			want   int
			gone   []string
		}{
			{t0, 0, nil}, // finished at t0: not before it
			{t0.Add(30 * time.Minute), 3, []string{"early-0", "early-1", "early-2"}},
			{t0.Add(30 * time.Minute), 0, nil},
			{t0.Add(time.Hour + time.Nanosecond), 3, []string{"late-0", "late-1", "late-failed"}},
			{t0.Add(1000 * time.Hour), 0, nil},
		} {
			n, err := env.E.Purge(ctx, tc.before)
			if err != nil || n != tc.want {
				t.Fatalf("Purge(t0+%v) = %d, %v; want %d", tc.before.Sub(t0), n, err, tc.want)
			}
			for _, id := range tc.gone {
				if !gone(t, env.E, id) {
					t.Errorf("Purge(t0+%v): run %q still there", tc.before.Sub(t0), id)
				}
			}
		}
		if st := mustGet(t, env.E, "running").Status; st != durable.StatusRunning {
			t.Errorf("running run: %v", st)
		}

		// More than one transaction's worth (Purge works in batches of 100).
		for i := range 250 {
			if _, err := durable.Run(ctx, env.E, done, fmt.Sprintf("many-%03d", i), struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		if n, err := env.E.Purge(ctx, time.Now()); err != nil || n != 250 {
			t.Fatalf("Purge of 250 runs = %d, %v", n, err)
		}
		page, err := env.E.List(ctx, durable.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 1 || page.Runs[0].ID != "running" {
			t.Errorf("after Purge, List = %v; want only the running run", page.Runs)
		}
	})
}

// A child that finished before its parent is deleted on its own schedule;
// the parent's journal keeps the child's result, so the parent replays
// after a restart (which follows the deletion) and completes with it, and
// the child does not run again.
func TestRetentionChildDeletedBeforeParent(t *testing.T) {
	t.Parallel()
	// The workflows count their steps per store variant: each is
	// registered by Start.
	both(t, &durable.Config{Retention: keep}, func(t *testing.T, env *storeEnv) {
		var runs tally
		kid := durable.Define("rn-kid", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "double", func(context.Context) (int, error) {
				runs.add("double")
				return 2 * in, nil
			})
		})
		parent := durable.Define("rn-parent", func(ctx durable.Context, in int) (int, error) {
			v, err := durable.RunChild(ctx, kid, "kid", in)
			if err != nil {
				return 0, err
			}
			if err := durable.Sleep(ctx, 3*time.Hour); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "plus-one", func(context.Context) (int, error) {
				runs.add("plus-one")
				return v + 1, nil
			})
		})
		ctx := t.Context()
		t0 := time.Now()
		if _, err := durable.Start(ctx, env.E, parent, "parent", 21); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := mustGet(t, env.E, "kid").Status; st != durable.StatusCompleted {
			t.Fatalf("child: %v, want completed", st)
		}
		sleepUntil(t0.Add(keep + interval + time.Second))
		if !gone(t, env.E, "kid") {
			t.Fatal("the finished child was not deleted while its parent runs")
		}
		if st := mustGet(t, env.E, "parent").Status; st != durable.StatusRunning {
			t.Fatalf("parent: %v, want running", st)
		}
		evs, err := durable.History(ctx, env.store(), "parent")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) < 2 || evs[1].Kind != "child" || evs[1].What != "completed" || evs[1].Detail != "42" {
			t.Fatalf("parent's history %v; want the child's result 42 at 0.1", evs)
		}

		env.restart(&durable.Config{Workflows: []durable.Definition{kid, parent}, Retention: keep})
		h, err := durable.Start(ctx, env.E, parent, "parent", 21)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.Result(ctx)
		if err != nil || got != 43 {
			t.Fatalf("Result = %d, %v; want 43", got, err)
		}
		if n := runs.get("double"); n != 1 {
			t.Errorf("the child's step ran %d times, want 1", n)
		}
		if n := runs.get("plus-one"); n != 1 {
			t.Errorf("the parent's step ran %d times, want 1", n)
		}
		if !gone(t, env.E, "kid") {
			t.Error("the deleted child came back")
		}
	})
}

// A detached child outlives its parent's deletion, and then finishes
// (its result has no parent to go to) and is deleted in its turn.
func TestRetentionParentDeletedBeforeChild(t *testing.T) {
	t.Parallel()
	parent := durable.Define("rn-leaver", func(ctx durable.Context, _ struct{}) (int, error) {
		durable.StartChild(ctx, waiter, "kid", struct{}{}, durable.Detached())
		return 1, nil
	})
	cfg := &durable.Config{Workflows: []durable.Definition{parent, waiter}, Retention: keep}
	both(t, cfg, func(t *testing.T, env *storeEnv) {
		ctx := t.Context()
		if _, err := durable.Run(ctx, env.E, parent, "parent", struct{}{}); err != nil {
			t.Fatal(err)
		}
		finished := mustGet(t, env.E, "parent").UpdatedAt
		sleepUntil(finished.Add(keep + interval + time.Second))
		if !gone(t, env.E, "parent") {
			t.Fatal("the parent was not deleted")
		}
		if info := mustGet(t, env.E, "kid"); info.Status != durable.StatusRunning || info.Parent != "parent" {
			t.Fatalf("child: %v of parent %q; want running, of parent", info.Status, info.Parent)
		}
		if err := durable.Send(ctx, env.E, "kid", "go", "now"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		info := mustGet(t, env.E, "kid")
		if info.Status != durable.StatusCompleted {
			t.Fatalf("child after its message: %v (%v), want completed", info.Status, info.Err)
		}
		sleepUntil(info.UpdatedAt.Add(keep + interval + time.Second))
		if !gone(t, env.E, "kid") {
			t.Error("the child was not deleted")
		}
	})
}

// Once its run was deleted, a run id can be started again: a new run
// executes, with the new input.
func TestRetentionRunIDReusable(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{Retention: keep}, func(t *testing.T, env *storeEnv) {
		var runs tally
		wf := durable.Define("rn-tenfold", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "tenfold", func(context.Context) (int, error) {
				runs.add("tenfold")
				return 10 * in, nil
			})
		})
		ctx := t.Context()
		if got, err := durable.Run(ctx, env.E, wf, "r", 1); err != nil || got != 10 {
			t.Fatalf("first run = %d, %v", got, err)
		}
		// Before the deletion, Start returns the finished run.
		if got, err := durable.Run(ctx, env.E, wf, "r", 2); err != nil || got != 10 {
			t.Fatalf("second Start before the deletion = %d, %v; want the first run's 10", got, err)
		}
		first := mustGet(t, env.E, "r").CreatedAt
		time.Sleep(keep + interval + time.Second)
		synctest.Wait()
		if !gone(t, env.E, "r") {
			t.Fatal("run not deleted")
		}
		if got, err := durable.Run(ctx, env.E, wf, "r", 2); err != nil || got != 20 {
			t.Fatalf("run after the deletion = %d, %v; want 20", got, err)
		}
		if n := runs.get("tenfold"); n != 2 {
			t.Errorf("the step ran %d times, want 2 (once per run)", n)
		}
		if c := mustGet(t, env.E, "r").CreatedAt; !c.After(first) {
			t.Errorf("the new run was created at %v, not after the first (%v)", c, first)
		}
	})
}

// countingClock is the bubble's clock, counting the engine's calls.
type countingClock struct{ calls atomic.Int64 }

func (c *countingClock) Now() time.Time {
	c.calls.Add(1)
	return time.Now()
}

func (c *countingClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	c.calls.Add(1)
	tm := time.NewTimer(time.Until(at))
	return tm.C, tm.Stop
}

// Once every finished run was deleted, the retention loop sets no timer:
// a bubble whose runs all wait for messages that never come is idle (and
// a test blocked on such a run is reported by synctest as a deadlock,
// instead of spinning through virtual time). Measured by the engine's
// clock calls: none at all during 30 idle virtual days.
func TestRetentionLetsTheBubbleIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
		clock := &countingClock{}
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{done, waiter}, Retention: keep, Clock: clock, Logger: discardLogger})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, waiter, "waiting", struct{}{}); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Run(ctx, env.Engine, done, "done", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(keep + interval + time.Minute)
		synctest.Wait()
		if !gone(t, env.Engine, "done") {
			t.Fatal("the finished run was not deleted")
		}

		calls, t0 := clock.calls.Load(), time.Now()
		synctest.Wait()
		if d := time.Since(t0); d != 0 {
			t.Fatalf("virtual time moved %v while every goroutine was blocked", d)
		}
		time.Sleep(30 * 24 * time.Hour)
		synctest.Wait()
		if n := clock.calls.Load() - calls; n != 0 {
			t.Errorf("the engine used its clock %d times in 30 idle virtual days: a timer keeps the bubble busy", n)
		}
		if st := mustGet(t, env.Engine, "waiting").Status; st != durable.StatusRunning {
			t.Errorf("waiting run: %v", st)
		}
	})
}

// five is five steps; the results depend on the input.
var five = durable.Define("rn-five", func(ctx durable.Context, in int) (int, error) {
	sum := 0
	for i := range 5 {
		v, err := durable.Step(ctx, "part", func(context.Context) (int, error) { return in*10 + i, nil })
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
})

// A run that finished before a restart is deleted by the new engine: it
// purges at Open and once more a retention period later, so the run is
// gone a retention period (and a check interval) after the restart at the
// latest, and present until its own period is over.
func TestRetentionAfterRestart(t *testing.T) {
	t.Parallel()
	done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	cfg := &durable.Config{Workflows: []durable.Definition{done}, Retention: keep}
	for _, down := range []time.Duration{0, 30 * time.Minute, 3 * time.Hour} {
		t.Run(fmt.Sprintf("restart after %v", down), func(t *testing.T) {
			t.Parallel()
			both(t, cfg, func(t *testing.T, env *storeEnv) {
				if _, err := durable.Run(t.Context(), env.E, done, "r", struct{}{}); err != nil {
					t.Fatal(err)
				}
				finished := mustGet(t, env.E, "r").UpdatedAt
				if err := env.E.Close(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(down) // the engine is down
				env.restart(nil)
				restarted := time.Now()
				synctest.Wait()
				if down > keep {
					if !gone(t, env.E, "r") {
						t.Fatal("a run past its retention period was not deleted at Open")
					}
					return
				}
				sleepUntil(finished.Add(keep - time.Second))
				if gone(t, env.E, "r") {
					t.Fatal("run deleted before its retention period")
				}
				sleepUntil(restarted.Add(keep + interval + time.Second))
				if !gone(t, env.E, "r") {
					t.Fatalf("run still there %v after it finished, %v after the restart", time.Since(finished), time.Since(restarted))
				}
			})
		})
	}
}

// The default retention period is 7 days, checked every hour (a tenth of
// it, at most an hour).
func TestRetentionDefaultIsSevenDays(t *testing.T) {
	t.Parallel()
	done := durable.Define("rn-done", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	synctest.Test(t, func(t *testing.T) {
		env := memoryEnv(t, &durable.Config{Workflows: []durable.Definition{done}})
		if _, err := durable.Run(t.Context(), env.E, done, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		finished := mustGet(t, env.E, "r").UpdatedAt
		const week = 7 * 24 * time.Hour
		sleepUntil(finished.Add(week - time.Second))
		if gone(t, env.E, "r") {
			t.Fatal("run deleted before 7 days")
		}
		sleepUntil(finished.Add(week + time.Hour + time.Second))
		if !gone(t, env.E, "r") {
			t.Fatal("run still there 7 days and an hour after it finished")
		}
	})
}

// TestResultAfterTheRunWasDeleted: a handle returns the outcome of a run
// that finished, even when retention (or Purge) deleted the run before
// Result read it. With a tiny Config.Retention that happened to about one
// Run in 300.
func TestResultAfterTheRunWasDeleted(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		ok := durable.Define("deleted-ok", func(ctx durable.Context, n int) (int, error) { return 2 * n, nil })
		fails := durable.Define("deleted-fails", func(ctx durable.Context, n int) (int, error) { return 0, errors.New("nope") })
		e := open(t, &durable.Config{Workflows: []durable.Definition{ok, fails}, Retention: -1})
		h1, err := durable.Start(ctx, e, ok, "d-1", 21)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := durable.Start(ctx, e, fails, "d-2", 0)
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e, "d-1", durable.StatusCompleted)
		waitStatus(t, e, "d-2", durable.StatusFailed)
		if n, err := e.Purge(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("Purge = %d, %v; want 2 runs deleted", n, err)
		}
		if got, err := h1.Result(ctx); err != nil || got != 42 {
			t.Errorf("Result of a deleted completed run = %v, %v; want 42, nil", got, err)
		}
		if _, err := h2.Result(ctx); err == nil || err.Error() != "nope" {
			t.Errorf("Result of a deleted failed run = %v; want nope", err)
		}
	})
}
