package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
)

// ContinueAsNew, Config.MaxHistory and History tests. The helpers (storeEnv,
// both, ...) are in helpers_test.go.

// counterWorkflow is a counter: five steps, then it continues as new
// with n+1 until n is 3, and returns the sum of the last epoch's steps
// (30+31+32+33+34 = 160). Each execution of the function reports its
// WorkflowInfoFrom; each step execution is counted as "n/i". If pause, epoch 2 sleeps
// an hour after its third step.
func counterWorkflow(name string, runs *tally, entries *valueLog[durable.WorkflowInfo], pause bool) *durable.Workflow[int, int] {
	return durable.Define(name, func(ctx durable.Context, n int) (int, error) {
		entries.add(durable.WorkflowInfoFrom(ctx))
		sum := 0
		for i := range 5 {
			v, err := durable.Step(ctx, fmt.Sprintf("s%d", i), func(context.Context) (int, error) {
				runs.add(fmt.Sprintf("%d/%d", n, i))
				return n*10 + i, nil
			})
			if err != nil {
				return 0, err
			}
			sum += v
			if pause && n == 2 && i == 2 {
				if err := durable.Sleep(ctx, time.Hour); err != nil {
					return 0, err
				}
			}
		}
		if n < 3 {
			return 0, durable.ContinueAsNew(ctx, n+1)
		}
		return sum, nil
	})
}

// checkStepsOnce fails unless every step of the counter's epochs 0..3
// ran exactly once.
func checkStepsOnce(t *testing.T, runs *tally) {
	t.Helper()
	for n := range 4 {
		for i := range 5 {
			if c := runs.get(fmt.Sprintf("%d/%d", n, i)); c != 1 {
				t.Errorf("step s%d of epoch %d ran %d times, want 1", i, n, c)
			}
		}
	}
}

// The counter continues as new three times: the handle returns the last
// epoch's result, WorkflowInfoFrom counts epochs and positions from 0 in each, and
// History shows only the current epoch. On bbolt the old epochs' journals
// stay in the file until Purge removes them with the run.
func TestContinueAsNewCounter(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{Retention: -1}, func(t *testing.T, env *storeEnv) {
		var runs tally
		var entries valueLog[durable.WorkflowInfo]
		counter := counterWorkflow("rn-counter", &runs, &entries, false)
		ctx := t.Context()
		h, err := durable.Start(ctx, env.E, counter, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 160 {
			t.Fatalf("Result = %d, %v; want 160 (the last epoch's)", got, err)
		}
		var want []durable.WorkflowInfo
		for epoch := range 4 {
			want = append(want, durable.WorkflowInfo{RunID: "c", Workflow: "rn-counter", Epoch: epoch})
		}
		if got := entries.all(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("WorkflowInfoFrom at each start of the function:\n got %+v\nwant %+v", got, want)
		}
		checkStepsOnce(t, &runs)
		if st := mustGet(t, env.E, "c").Status; st != durable.StatusCompleted {
			t.Errorf("status %v", st)
		}

		evs, err := durable.History(ctx, env.store(), "c")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, fmt.Sprintf("%d %s %s", ev.Position, ev.Name, ev.Detail))
		}
		if want := []string{"0 s0 30", "1 s1 31", "2 s2 32", "3 s3 33", "4 s4 34"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("History = %q, want the last epoch only: %q", got, want)
		}

		if env.bolt == nil {
			return
		}
		rep, err := env.bolt.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("Verify: %v %v", err, rep.Problems)
		}
		if rep.Runs != 1 || rep.Epochs != 4 || rep.Records != 20 {
			t.Errorf("Verify: %d runs, %d epochs, %d records; want 1, 4 (3 ended and the last), 20", rep.Runs, rep.Epochs, rep.Records)
		}
		time.Sleep(time.Second)
		if n, err := env.E.Purge(ctx, time.Now()); err != nil || n != 4 {
			t.Errorf("Purge = %d, %v; want 4 (three ended epochs and the run)", n, err)
		}
		if rep, err = env.bolt.Verify(ctx); err != nil || !rep.OK() || rep.Runs != 0 || rep.Epochs != 0 || rep.Records != 0 {
			t.Errorf("after Purge, Verify: %+v, %v; want an empty journal", rep, err)
		}
	})
}

// epochsWorkflow does two steps per epoch and continues as new until
// epoch 3, which waits for a message on "stop".
var epochsWorkflow = durable.Define("rn-epochs", func(ctx durable.Context, n int) (int, error) {
	for i := range 2 {
		if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) { return n*10 + i, nil }); err != nil {
			return 0, err
		}
	}
	if n < 3 {
		return 0, durable.ContinueAsNew(ctx, n+1)
	}
	_, err := durable.Receive[string](ctx, "stop")
	return n, err
})

// The journals of ended epochs stay in the bbolt file for the retention
// period after their epoch ended, while the run goes on; then the
// retention loop deletes them, and the run itself once it finished and
// its own period passed.
func TestContinueAsNewOldEpochsKeptUntilRetention(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := boltEnv(t, &durable.Config{Workflows: []durable.Definition{epochsWorkflow}, Retention: keep})
		ctx := t.Context()
		epochs := func(when string, runs, epochs, records int) {
			t.Helper()
			rep, err := env.bolt.Verify(ctx)
			if err != nil || !rep.OK() {
				t.Fatalf("%s: Verify: %v %v", when, err, rep.Problems)
			}
			if rep.Runs != runs || rep.Epochs != epochs || rep.Records != records {
				t.Errorf("%s: %d runs, %d epoch journals, %d records; want %d, %d, %d", when, rep.Runs, rep.Epochs, rep.Records, runs, epochs, records)
			}
		}
		t0 := time.Now()
		h, err := durable.Start(ctx, env.E, epochsWorkflow, "e", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		epochs("at once", 1, 4, 8)
		if evs, err := durable.History(ctx, env.store(), "e"); err != nil || len(evs) != 2 || evs[0].Detail != "30" {
			t.Errorf("History = %v, %v; want epoch 3's two steps", evs, err)
		}

		sleepUntil(t0.Add(keep - time.Second))
		epochs("just before the retention period", 1, 4, 8)
		sleepUntil(t0.Add(keep + interval + time.Second))
		epochs("after the retention period", 1, 1, 2)
		if st := mustGet(t, env.E, "e").Status; st != durable.StatusRunning {
			t.Fatalf("run: %v, want running", st)
		}

		if err := durable.Send(ctx, env.E, "e", "stop", "now"); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 3 {
			t.Fatalf("Result = %d, %v; want 3", got, err)
		}
		finished := mustGet(t, env.E, "e").UpdatedAt
		sleepUntil(finished.Add(keep - time.Second))
		epochs("the finished run, before its retention period", 1, 1, 3)
		sleepUntil(finished.Add(keep + interval + time.Second))
		epochs("the finished run, after its retention period", 0, 0, 0)
	})
}

// Engine.Purge removes ended epochs' journals while the run goes on: one
// item per epoch, then the run when it finished.
func TestContinueAsNewPurgeEndedEpochs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := boltEnv(t, &durable.Config{Workflows: []durable.Definition{epochsWorkflow}, Retention: -1})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.E, epochsWorkflow, "e", 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n, err := env.E.Purge(ctx, time.Now()); err != nil || n != 3 {
			t.Fatalf("Purge = %d, %v; want 3 ended epochs", n, err)
		}
		rep, err := env.bolt.Verify(ctx)
		if err != nil || !rep.OK() || rep.Runs != 1 || rep.Epochs != 1 || rep.Records != 2 {
			t.Fatalf("after Purge: %+v, %v; want the run and its current epoch's 2 records", rep, err)
		}
		if err := durable.Send(ctx, env.E, "e", "stop", "now"); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 3 {
			t.Fatalf("Result = %d, %v; want 3", got, err)
		}
		time.Sleep(time.Second)
		if n, err := env.E.Purge(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1 (the run)", n, err)
		}
	})
}

// A restart in the middle of epoch 2 resumes epoch 2 from its own
// journal: the function starts in epoch 2, replaying; no step of an
// earlier epoch, nor of epoch 2 before the restart, runs again.
func TestContinueAsNewRestartMidEpoch(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		var runs tally
		var entries valueLog[durable.WorkflowInfo]
		counter := counterWorkflow("rn-counter", &runs, &entries, true)
		ctx := t.Context()
		h, err := durable.Start(ctx, env.E, counter, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // epoch 2 sleeps after its third step
		if info := mustGet(t, env.E, "c"); info.WakeAt.IsZero() {
			t.Fatalf("the run does not sleep: %+v", info)
		}
		env.restart(&durable.Config{Workflows: []durable.Definition{counter}})
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("the old engine's handle: %v, want ErrClosed", err)
		}
		h, err = durable.Start(ctx, env.E, counter, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 160 {
			t.Fatalf("Result = %d, %v; want 160", got, err)
		}
		var got []string
		for _, rc := range entries.all() {
			got = append(got, fmt.Sprintf("epoch %d replaying %v", rc.Epoch, rc.Replaying))
		}
		want := []string{"epoch 0 replaying false", "epoch 1 replaying false", "epoch 2 replaying false", "epoch 2 replaying true", "epoch 3 replaying false"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the function started in:\n %q\nwant\n %q", got, want)
		}
		checkStepsOnce(t, &runs)
	})
}

// A child that continues as new delivers its final result to its parent,
// across a restart during one of its later epochs.
func TestContinueAsNewChild(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		var runs tally
		kid := durable.Define("rn-kid-counter", func(ctx durable.Context, n int) (int, error) {
			if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) {
				runs.add(fmt.Sprint(n))
				return n, nil
			}); err != nil {
				return 0, err
			}
			if n == 1 {
				if err := durable.Sleep(ctx, time.Hour); err != nil {
					return 0, err
				}
			}
			if n < 3 {
				return 0, durable.ContinueAsNew(ctx, n+1)
			}
			return 7 * n, nil
		})
		parent := durable.Define("rn-kid-parent", func(ctx durable.Context, _ struct{}) (int, error) {
			v, err := durable.RunChild(ctx, kid, "", 0)
			return v + 1, err
		})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.E, parent, "p", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the child sleeps in its epoch 1
		env.restart(&durable.Config{Workflows: []durable.Definition{kid, parent}})
		h, err := durable.Start(ctx, env.E, parent, "p", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 22 {
			t.Fatalf("parent's Result = %d, %v; want 22 (the child's final 21, plus one)", got, err)
		}
		info := mustGet(t, env.E, "p/0")
		if info.Status != durable.StatusCompleted || info.Parent != "p" {
			t.Errorf("child: %v of parent %q, want completed of p", info.Status, info.Parent)
		}
		for n := range 4 {
			if c := runs.get(fmt.Sprint(n)); c != 1 {
				t.Errorf("the child's step in epoch %d ran %d times, want 1", n, c)
			}
		}
	})
}

// ContinueAsNew with an input that cannot be encoded (too large, or not
// encodable at all) returns an error matching ErrPayload and starts no
// epoch: a workflow that returns it fails with it; one that ignores it
// goes on in its epoch.
func TestContinueAsNewBadInput(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{MaxPayloadBytes: 64}, func(t *testing.T, env *storeEnv) {
		var errs valueLog[error]
		wf := durable.Define("rn-bad-input", func(ctx durable.Context, mode string) (string, error) {
			var err error
			switch mode {
			case "large", "ignore":
				err = durable.ContinueAsNew(ctx, strings.Repeat("x", 100))
			case "func":
				err = durable.ContinueAsNew(ctx, func() {})
			}
			errs.add(err)
			if mode == "ignore" {
				return durable.Step(ctx, "went-on", func(context.Context) (string, error) {
					return fmt.Sprintf("epoch %d", durable.WorkflowInfoFrom(ctx).Epoch), nil
				})
			}
			return "", err
		})
		ctx := t.Context()
		for _, mode := range []string{"large", "func"} {
			_, err := durable.Run(ctx, env.E, wf, mode, mode)
			if !errors.Is(err, durable.ErrPayload) {
				t.Errorf("%s: Result = %v, want an error matching ErrPayload", mode, err)
			}
			if st := mustGet(t, env.E, mode).Status; st != durable.StatusFailed {
				t.Errorf("%s: %v, want failed", mode, st)
			}
		}
		if got, err := durable.Run(ctx, env.E, wf, "ignore", "ignore"); err != nil || got != "epoch 0" {
			t.Errorf("a workflow that ignores the error: %q, %v; want it to go on in epoch 0", got, err)
		}
		for i, err := range errs.all() {
			if !errors.Is(err, durable.ErrPayload) {
				t.Errorf("ContinueAsNew #%d returned %v, want an error matching ErrPayload", i, err)
			}
		}
		if err := errs.all()[0]; !errors.Is(err, durable.ErrPayloadTooLarge) {
			t.Errorf("ContinueAsNew with 100 bytes over a 64-byte limit: %v, want ErrPayloadTooLarge", err)
		}
	})
}

// A cancel requested before ContinueAsNew, and not seen by the ending
// epoch, carries over: the new epoch's first operation returns
// ErrCanceled (its step does not run) and the run ends canceled.
func TestContinueAsNewCarriesCancel(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		var runs tally
		wf := durable.Define("rn-cancel-carry", func(ctx durable.Context, n int) (int, error) {
			if n == 0 {
				// Cancellation does not reach this receive.
				if _, err := durable.Receive[string](durable.WithoutCancel(ctx), "go"); err != nil {
					return 0, err
				}
				return 0, durable.ContinueAsNew(ctx, 1)
			}
			return durable.Step(ctx, "first", func(context.Context) (int, error) {
				runs.add("first")
				return 1, nil
			})
		})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.E, wf, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.E.Cancel(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := mustGet(t, env.E, "c").Status; st != durable.StatusRunning {
			t.Fatalf("before its message the run is %v, want running", st)
		}
		if err := durable.Send(ctx, env.E, "c", "go", "now"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Fatalf("Result = %v, want ErrCanceled", err)
		}
		if st := mustGet(t, env.E, "c").Status; st != durable.StatusCanceled {
			t.Errorf("status %v, want canceled", st)
		}
		if n := runs.get("first"); n != 0 {
			t.Errorf("the new epoch's step ran %d times, want 0", n)
		}
		evs, err := durable.History(ctx, env.store(), "c")
		if err != nil || len(evs) != 1 || evs[0].Name != "first" || evs[0].What != "canceled" {
			t.Errorf("History = %v, %v; want the cancellation delivered at the new epoch's step", evs, err)
		}
	})
}

// The run's deadline carries over to the new epoch.
func TestContinueAsNewCarriesDeadline(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		wf := durable.Define("rn-deadline-carry", func(ctx durable.Context, n int) (int, error) {
			if n == 0 {
				return 0, durable.ContinueAsNew(ctx, 1)
			}
			return n, durable.Sleep(ctx, 3*time.Hour)
		})
		ctx := t.Context()
		t0 := time.Now()
		h, err := durable.Start(ctx, env.E, wf, "d", 0, durable.WithRunTimeout(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrDeadlineExceeded) {
			t.Fatalf("Result = %v, want ErrDeadlineExceeded", err)
		}
		if d := time.Since(t0); d != 2*time.Hour {
			t.Errorf("the run ended after %v, want its 2h deadline", d)
		}
	})
}

// Runs that continue as new while evicted and reloaded (a cache of one
// run for three) still give the right results and run every step once.
func TestContinueAsNewWithEviction(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{MaxCachedRuns: 1}, func(t *testing.T, env *storeEnv) {
		var runs tally
		wf := durable.Define("rn-evicted", func(ctx durable.Context, n int) (int, error) {
			for i := range 3 {
				if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) {
					runs.add(fmt.Sprintf("%s %d/%d", ctx.RunID(), n, i))
					return i, nil
				}); err != nil {
					return 0, err
				}
				if err := durable.Sleep(ctx, time.Minute); err != nil {
					return 0, err
				}
			}
			if n < 2 {
				return 0, durable.ContinueAsNew(ctx, n+1)
			}
			return 100 + durable.WorkflowInfoFrom(ctx).Epoch, nil
		})
		ctx := t.Context()
		var hs []*durable.Handle[int]
		for r := range 3 {
			h, err := durable.Start(ctx, env.E, wf, fmt.Sprintf("r%d", r), 0)
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		for r, h := range hs {
			if got, err := h.Result(ctx); err != nil || got != 102 {
				t.Errorf("r%d: Result = %d, %v; want 102", r, got, err)
			}
		}
		for r := range 3 {
			for n := range 3 {
				for i := range 3 {
					if c := runs.get(fmt.Sprintf("r%d %d/%d", r, n, i)); c != 1 {
						t.Errorf("r%d epoch %d step %d ran %d times, want 1", r, n, i, c)
					}
				}
			}
		}
	})
}

// maxHistory is the cap of the MaxHistory tests.
const maxHistory = 10

// A child started in an epoch that ended before the child finished must
// not write its result into the parent's new epoch: that journal's
// positions belong to other operations. Here the new epoch's step "a" at
// position 0 recorded 5; the old epoch's child (started at position 0)
// then finishes with 99. After a restart "a" must replay as 5.
//
// KNOWN BUG (fails): executor.finish appends the child's result at
// (ParentPos, 1) of whatever epoch the parent is in, and the journal
// accepts it since that slot is free; the child's row does not record the
// parent's epoch, so neither side can tell. Replay then takes the last
// record at position 0, the child's, and "a" returns 99. (Live, the
// result is also handed to whatever waits at position 0 of the new epoch.)
func TestContinueAsNewChildOfEndedEpoch(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		kid := durable.Define("rn-orphan-kid", func(ctx durable.Context, _ int) (int, error) {
			_, err := durable.Receive[string](ctx, "go")
			return 99, err
		})
		parent := durable.Define("rn-orphan-parent", func(ctx durable.Context, n int) (int, error) {
			if n == 0 {
				durable.StartChild(ctx, kid, "", 0) // not awaited
				return 0, durable.ContinueAsNew(ctx, 1)
			}
			a, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 5, nil })
			if err != nil {
				return 0, err
			}
			_, err = durable.Receive[string](ctx, "next")
			return a, err
		})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.E, parent, "p", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // epoch 1 recorded "a" and waits on "next"
		if err := durable.Send(ctx, env.E, "p/0", "go", "now"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := mustGet(t, env.E, "p/0").Status; st != durable.StatusCompleted {
			t.Fatalf("child: %v", st)
		}
		evs, err := durable.History(ctx, env.store(), "p")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 {
			t.Errorf("the new epoch's history has records that are not its own:\n%v", evs)
		}
		env.restart(&durable.Config{Workflows: []durable.Definition{kid, parent}})
		h, err := durable.Start(ctx, env.E, parent, "p", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := durable.Send(ctx, env.E, "p", "next", "now"); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 5 {
			t.Errorf("after a restart, step a replayed as %d (%v); want its recorded 5", got, err)
		}
	})
}

// Messages wait in the run's inbox across epochs: four messages sent at
// once are received one per epoch, in order, none lost at an epoch's end.
func TestContinueAsNewKeepsInbox(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		wf := durable.Define("rn-inbox", func(ctx durable.Context, got []string) ([]string, error) {
			m, err := durable.Receive[string](ctx, "m")
			if err != nil {
				return nil, err
			}
			got = append(got, fmt.Sprintf("%s@%d", m, durable.WorkflowInfoFrom(ctx).Epoch))
			if len(got) < 4 {
				return nil, durable.ContinueAsNew(ctx, got)
			}
			return got, nil
		})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.E, wf, "i", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"a", "b", "c", "d"} {
			if err := durable.Send(ctx, env.E, "i", "m", m); err != nil {
				t.Fatal(err)
			}
		}
		got, err := h.Result(ctx)
		if want := "[a@0 b@1 c@2 d@3]"; err != nil || fmt.Sprint(got) != want {
			t.Errorf("Result = %v, %v; want %s", got, err, want)
		}
	})
}
