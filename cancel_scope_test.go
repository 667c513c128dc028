package durable_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// cancelEvents returns the "cancel" events of run id's journal, as
// `durable show` prints them.
func cancelEvents(t *testing.T, store journal.Store, id string) []string {
	t.Helper()
	evs, err := durable.History(t.Context(), store, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Kind == "cancel" {
			out = append(out, ev.String())
		}
	}
	return out
}

// A step started with Go under a scope: cancel cancels its context while
// it runs, its outcome is recorded as canceled, and the run goes on. The
// cancel is journaled ("cancel" event) and the scope's Context is done,
// the run's is not.
func TestScopeCancelRunningStep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var stepErrs valueLog[error]
		var counts tally
		wf := durable.Define("scope-step", func(ctx durable.Context, _ int) (string, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			defer cancel()
			f := durable.Go(ctx2, "slow", func(sctx context.Context) (int, error) {
				counts.add("slow")
				<-sctx.Done()
				stepErrs.add(sctx.Err())
				return 0, sctx.Err()
			})
			if err := durable.Sleep(ctx, time.Minute); err != nil { // the step runs meanwhile
				return "", err
			}
			cancel()
			_, err := f.Get(ctx)
			if !errors.Is(err, durable.ErrCanceled) || !errors.Is(err, context.Canceled) {
				return "", fmt.Errorf("Get of the canceled step = %v", err)
			}
			if ctx2.Err() != context.Canceled || ctx.Err() != nil {
				return "", fmt.Errorf("ctx2.Err() = %v, ctx.Err() = %v", ctx2.Err(), ctx.Err())
			}
			select {
			case <-ctx2.Done():
			default:
				return "", errors.New("ctx2 is not done")
			}
			if _, err := durable.Step(ctx2, "after", func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, durable.ErrCanceled) {
				return "", fmt.Errorf("a step on the canceled scope = %v", err)
			}
			return durable.Step(ctx, "go-on", func(context.Context) (string, error) { return "went on", nil })
		})
		env := durabletest.New(t, quietConfig(wf))
		out, err := durable.Run(t.Context(), env.Engine, wf, "r", 0)
		if err != nil || out != "went on" {
			t.Fatalf("Run = %q, %v; want went on", out, err)
		}
		if got := stepErrs.all(); len(got) != 1 || got[0] != context.Canceled {
			t.Errorf("the step's context ended with %v, want [context.Canceled]", got)
		}
		if n := counts.get("slow"); n != 1 {
			t.Errorf("the step ran %d times, want 1", n)
		}
		evs := cancelEvents(t, env.Store, "r")
		if len(evs) != 1 || !strings.Contains(evs[0], `cancel  "scope 1"  requested`) {
			t.Errorf("cancel events = %q, want one of scope 1", evs)
		}
		env.Restart() // the finished run replays the same way (nothing to do: it is finished)
		wantStatus(t, env.Engine, "r", durable.StatusCompleted)
	})
}

// A timer made under a scope that is canceled before it fires: AwaitAny
// sees it ready at once, Err and AwaitAll report the cancellation. A timer
// that fired before its Cancel is not canceled. Sleep and Receive on the
// canceled scope return at once.
func TestScopeCancelTimer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("scope-timer", func(ctx durable.Context, _ int) ([]string, error) {
			var log []string
			ctx2, cancel := durable.WithCancel(ctx)
			long := durable.NewTimer(ctx2, 24*time.Hour)
			short := durable.NewTimer(ctx, time.Minute)
			i, err := durable.AwaitAny(ctx, long, short)
			log = append(log, fmt.Sprintf("first %d %v", i, err))
			start := durable.Now(ctx)
			cancel()
			i, err = durable.AwaitAny(ctx, long, durable.OnReceive[string]("never"))
			log = append(log, fmt.Sprintf("then %d %v, long canceled %v", i, err, errors.Is(long.Err(), durable.ErrCanceled)))
			log = append(log, fmt.Sprintf("all canceled %v", errors.Is(durable.AwaitAll(ctx, short, long), durable.ErrCanceled)))
			log = append(log, fmt.Sprintf("sleep canceled %v", errors.Is(durable.Sleep(ctx2, time.Hour), durable.ErrCanceled)))
			_, err = durable.Receive[string](ctx2, "never")
			log = append(log, fmt.Sprintf("receive canceled %v", errors.Is(err, durable.ErrCanceled)))
			if waited := durable.Now(ctx).Sub(start); waited != 0 {
				log = append(log, fmt.Sprintf("waited %v", waited))
			}
			short.Cancel(ctx) // fired already: a no-op
			log = append(log, fmt.Sprintf("short err %v", short.Err()))
			return log, nil
		})
		env := durabletest.New(t, quietConfig(wf))
		out, err := durable.Run(t.Context(), env.Engine, wf, "r", 0)
		want := []string{"first 1 <nil>", "then 0 <nil>, long canceled true", "all canceled true", "sleep canceled true", "receive canceled true", "short err <nil>"}
		if err != nil || strings.Join(out, "|") != strings.Join(want, "|") {
			t.Fatalf("Run = %q, %v;\nwant %q", out, err, want)
		}
		evs := cancelEvents(t, env.Store, "r")
		if len(evs) != 2 || !strings.Contains(evs[0], `"scope 1"`) || !strings.Contains(evs[1], `"position 1"`) {
			t.Errorf("cancel events = %q, want scope 1 and position 1 (the short timer)", evs)
		}
	})
}

// A child run started under a scope: cancel cancels it through its own
// cancellation (its journal ends canceled), its future returns a
// *ChildError matching ErrCanceled, and the parent goes on.
func TestScopeCancelChild(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("scope-child-c", func(ctx durable.Context, _ int) (string, error) {
			return durable.Receive[string](ctx, "never")
		})
		parent := durable.Define("scope-child-p", func(ctx durable.Context, _ int) (string, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			f := durable.StartChild(ctx2, child, "kid", 0)
			g := durable.StartChild(ctx, child, "kid2", 0)
			if err := durable.Sleep(ctx, time.Minute); err != nil {
				return "", err
			}
			cancel()
			_, err := f.Get(ctx)
			var ce *durable.ChildError
			if !errors.As(err, &ce) || !errors.Is(err, durable.ErrCanceled) {
				return "", fmt.Errorf("Get of the canceled child = %v", err)
			}
			if g.Ready() {
				return "", errors.New("the child outside the scope finished")
			}
			g.Cancel(ctx) // Future.Cancel: the other child too
			_, err = g.Get(ctx)
			if !errors.Is(err, durable.ErrCanceled) {
				return "", fmt.Errorf("Get of the other child = %v", err)
			}
			return "went on", nil
		})
		env := durabletest.New(t, quietConfig(parent, child))
		out, err := durable.Run(t.Context(), env.Engine, parent, "p", 0)
		if err != nil || out != "went on" {
			t.Fatalf("Run = %q, %v; want went on", out, err)
		}
		for _, id := range []string{"kid", "kid2"} {
			info := wantStatus(t, env.Engine, id, durable.StatusCanceled)
			wantCanceled(t, id+" Err", info.Err)
		}
		if evs := cancelEvents(t, env.Store, "p"); len(evs) != 2 {
			t.Errorf("cancel events = %q, want scope 1 and position 1", evs)
		}
	})
}

// Nested scopes: canceling the outer one cancels what runs under the
// inner one; canceling the inner one leaves the outer one alone; a scope
// made from WithoutCancel is not reached by the run's cancellation but by
// its own cancel.
func TestScopeNested(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		block := func(sctx context.Context) (int, error) { <-sctx.Done(); return 0, sctx.Err() }
		wf := durable.Define("scope-nested", func(ctx durable.Context, _ int) ([]string, error) {
			var log []string
			outer, cancelOuter := durable.WithCancel(ctx)
			inner, cancelInner := durable.WithCancel(outer)
			a := durable.Go(inner, "a", block)
			b := durable.Go(outer, "b", block)
			inner2, cancelInner2 := durable.WithCancel(outer)
			c := durable.Go(inner2, "c", block)
			cancelInner2()
			_, err := c.Get(ctx)
			log = append(log, fmt.Sprintf("inner2 canceled: c %v, outer err %v, b ready %v", errors.Is(err, durable.ErrCanceled), outer.Err(), b.Ready()))
			cancelOuter()
			_, errA := a.Get(ctx)
			_, errB := b.Get(ctx)
			log = append(log, fmt.Sprintf("outer canceled: a %v b %v inner err %v", errors.Is(errA, durable.ErrCanceled), errors.Is(errB, durable.ErrCanceled), inner.Err()))
			cancelInner() // canceled with its parent already: no-op, no position
			detached, cancelDetached := durable.WithCancel(durable.WithoutCancel(ctx))
			d := durable.Go(detached, "d", block)
			if _, err := durable.Receive[string](ctx, "go"); !errors.Is(err, durable.ErrCanceled) {
				return nil, fmt.Errorf("Receive after the run's cancel = %v", err)
			}
			log = append(log, fmt.Sprintf("run canceled: detached err %v, d ready %v", detached.Err(), d.Ready()))
			cancelDetached()
			_, err = d.Get(detached)
			log = append(log, fmt.Sprintf("detached canceled: d %v", errors.Is(err, durable.ErrCanceled)))
			_, err = durable.Step(durable.WithoutCancel(ctx), "report", func(context.Context) (string, error) {
				return strings.Join(log, "|"), nil
			})
			return log, err
		})
		env := durabletest.New(t, quietConfig(wf))
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		out, err := h.Result(t.Context())
		if err != nil {
			t.Fatalf("Result = %v", err)
		}
		want := []string{
			"inner2 canceled: c true, outer err <nil>, b ready false",
			"outer canceled: a true b true inner err context canceled",
			"run canceled: detached err <nil>, d ready false",
			"detached canceled: d true",
		}
		if strings.Join(out, "|") != strings.Join(want, "|") {
			t.Fatalf("Result = %q;\nwant %q", out, want)
		}
		if evs := cancelEvents(t, env.Store, "r"); len(evs) != 3 {
			t.Errorf("cancel events = %q, want scopes 3, 1 and 4", evs)
		}
	})
}

// Canceling what already finished changes nothing: the step's result and
// the run's outcome stay, and replay agrees.
func TestScopeCancelAfterDone(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wf := durable.Define("scope-after", func(ctx durable.Context, _ int) (int, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			f := durable.Go(ctx2, "quick", func(context.Context) (int, error) { counts.add("quick"); return 7, nil })
			v, err := f.Get(ctx)
			if err != nil {
				return 0, err
			}
			cancel()
			f.Cancel(ctx)
			f.Cancel(ctx) // twice: no second record
			w, err := f.Get(ctx)
			if err != nil || w != v {
				return 0, fmt.Errorf("Get after the cancel = %d, %v; want %d", w, err, v)
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil { // a restart here replays the cancels
				return 0, err
			}
			return w, nil
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		env.Restart()
		h, err := durable.Attach(t.Context(), env.Engine, wf, "r")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Result(t.Context()); err != nil || out != 7 {
			t.Fatalf("Result = %d, %v; want 7", out, err)
		}
		if n := counts.get("quick"); n != 1 {
			t.Errorf("the step ran %d times, want 1", n)
		}
		if evs := cancelEvents(t, env.Store, "r"); len(evs) != 2 {
			t.Errorf("cancel events = %q, want scope 1 and position 0", evs)
		}
	})
}

// A crash after the cancel is journaled and before the canceled step's
// outcome is: on resume the step ends canceled without running again
// (the replay reaches the cancel before the step is scheduled).
func TestScopeCrashBetweenCancelAndOutcome(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		release := make(chan struct{})
		defer close(release)
		wf := durable.Define("scope-crash", func(ctx durable.Context, _ int) (string, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			f := durable.Go(ctx2, "stubborn", func(context.Context) (int, error) {
				counts.add("stubborn")
				<-release // ignores its context: its outcome waits
				return 1, nil
			})
			if err := durable.Sleep(ctx, time.Minute); err != nil {
				return "", err
			}
			for range 1000 { // replay takes a while to reach the cancel
				durable.Now(ctx)
			}
			cancel()
			_, err := f.Get(ctx)
			return fmt.Sprintf("canceled %v", errors.Is(err, durable.ErrCanceled)), nil
		})
		store := journal.NewMemory()
		e := newEngine(t, store, quietConfig(wf))
		if _, err := durable.Start(t.Context(), e, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // past the cancel: the workflow waits in Get
		synctest.Wait()
		if evs := cancelEvents(t, store, "r"); len(evs) != 1 {
			t.Fatalf("before the crash: cancel events = %q, want one", evs)
		}
		if err := e.Close(); err == nil { // the step is abandoned unrecorded
			t.Fatal("Close with a step that ignores its context: no error")
		}
		e = newEngine(t, store, quietConfig(wf))
		h, err := durable.Attach(t.Context(), e, wf, "r")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Result(t.Context()); err != nil || out != "canceled true" {
			t.Fatalf("Result = %q, %v; want canceled true", out, err)
		}
		if n := counts.get("stubborn"); n != 1 {
			t.Errorf("the step ran %d times, want 1 (not again after the crash)", n)
		}
	})
}

// The run's own cancellation still reaches what runs under a scope: the
// step's context is canceled, the child is canceled, and the run ends
// canceled.
func TestScopeRunCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("scope-run-c", func(ctx durable.Context, _ int) (string, error) {
			return durable.Receive[string](ctx, "never")
		})
		wf := durable.Define("scope-run-p", func(ctx durable.Context, _ int) (int, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			defer cancel()
			kid := durable.StartChild(ctx2, child, "kid", 0)
			f := durable.Go(ctx2, "block", func(sctx context.Context) (int, error) { <-sctx.Done(); return 0, sctx.Err() })
			if _, err := f.Get(ctx); err != nil {
				return 0, err
			}
			_, err := kid.Get(ctx)
			return 0, err
		})
		env := durabletest.New(t, quietConfig(wf, child))
		h, err := durable.Start(t.Context(), env.Engine, wf, "p", 0)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.Engine.Cancel(t.Context(), "p"); err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(t.Context())
		wantCanceled(t, "Result", err)
		wantStatus(t, env.Engine, "p", durable.StatusCanceled)
		synctest.Wait()
		wantStatus(t, env.Engine, "kid", durable.StatusCanceled)
	})
}

// A panic stays contained with scopes about: a panicking step under a
// scope is a failed attempt, and a workflow that panics with a deferred
// cancel fails with a *PanicError; the engine goes on.
func TestScopePanic(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("scope-panic", func(ctx durable.Context, n int) (int, error) {
			ctx2, cancel := durable.WithCancel(ctx)
			defer cancel()
			f := durable.Go(ctx2, "boom", func(context.Context) (int, error) { panic("step boom") }, durable.WithRetry(retry.Policy{MaxAttempts: 1}))
			_, err := f.Get(ctx)
			var pe *durable.PanicError
			if !errors.As(err, &pe) {
				return 0, fmt.Errorf("the panicking step's error = %v, want a *PanicError", err)
			}
			durable.Go(ctx2, "pending", func(sctx context.Context) (int, error) { <-sctx.Done(); return 0, sctx.Err() })
			if n == 1 {
				panic("workflow boom")
			}
			return n, nil
		})
		env := durabletest.New(t, quietConfig(wf))
		_, err := durable.Run(t.Context(), env.Engine, wf, "p", 1)
		var pe *durable.PanicError
		if !errors.As(err, &pe) || !strings.Contains(pe.Value, "workflow boom") {
			t.Fatalf("Run = %v, want a *PanicError of the workflow", err)
		}
		if out, err := durable.Run(t.Context(), env.Engine, wf, "ok", 2); err != nil || out != 2 {
			t.Fatalf("the next run = %d, %v; want 2", out, err)
		}
	})
}

// Future.Cancel on the futures that lost an AwaitAny: a step and a child.
func TestFutureCancelLosers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var stepErrs valueLog[error]
		slowRuns := make(chan struct{})
		child := durable.Define("loser-c", func(ctx durable.Context, _ int) (string, error) {
			return durable.Receive[string](ctx, "never")
		})
		wf := durable.Define("losers", func(ctx durable.Context, _ int) (string, error) {
			fast := durable.Go(ctx, "fast", func(context.Context) (string, error) {
				<-slowRuns // the loser runs when it loses
				return "fast", nil
			})
			slow := durable.Go(ctx, "slow", func(sctx context.Context) (string, error) {
				close(slowRuns)
				<-sctx.Done()
				stepErrs.add(sctx.Err())
				return "", sctx.Err()
			})
			kid := durable.StartChild(ctx, child, "kid", 0)
			i, err := durable.AwaitAny(ctx, fast, slow, kid)
			if err != nil || i != 0 {
				return "", fmt.Errorf("AwaitAny = %d, %v", i, err)
			}
			slow.Cancel(ctx)
			kid.Cancel(ctx)
			_, errSlow := slow.Get(ctx)
			_, errKid := kid.Get(ctx)
			if !errors.Is(errSlow, durable.ErrCanceled) || !errors.Is(errKid, durable.ErrCanceled) {
				return "", fmt.Errorf("the losers ended with %v and %v", errSlow, errKid)
			}
			return fast.Get(ctx)
		})
		env := durabletest.New(t, quietConfig(wf, child))
		if out, err := durable.Run(t.Context(), env.Engine, wf, "r", 0); err != nil || out != "fast" {
			t.Fatalf("Run = %q, %v; want fast", out, err)
		}
		if got := stepErrs.all(); len(got) != 1 || got[0] != context.Canceled {
			t.Errorf("the slow step's context ended with %v, want [context.Canceled]", got)
		}
		wantStatus(t, env.Engine, "kid", durable.StatusCanceled)
	})
}

// scopeWorkflow cancels a step, a timer and a child under one scope
// (after wait), then goes on: its outcome does not depend on timing, so
// every crash variant must end with it.
var scopeChild = durable.Define("scope-every-c", func(ctx durable.Context, _ int) (string, error) {
	return durable.Receive[string](ctx, "never")
})

var scopeWorkflow = durable.Define("scope-every", func(ctx durable.Context, wait time.Duration) (string, error) {
	ctx2, cancel := durable.WithCancel(ctx)
	defer cancel()
	step := durable.Go(ctx2, "block", func(sctx context.Context) (int, error) { <-sctx.Done(); return 0, sctx.Err() })
	timer := durable.NewTimer(ctx2, time.Hour)
	kid := durable.StartChild(ctx2, scopeChild, "", 0)
	if err := durable.Sleep(ctx, wait); err != nil { // the step runs meanwhile
		return "", err
	}
	cancel()
	_, errStep := step.Get(ctx)
	_, errKid := kid.Get(ctx)
	i, err := durable.AwaitAny(ctx, timer)
	if err != nil {
		return "", err
	}
	v, err := durable.Step(ctx, "after", func(context.Context) (int, error) { return 42, nil })
	return fmt.Sprintf("step %v, child %v, timer %d %v, after %d %v", errors.Is(errStep, durable.ErrCanceled),
		errors.Is(errKid, durable.ErrCanceled), i, errors.Is(timer.Err(), durable.ErrCanceled), v, err), nil
})

// Crash at every commit of a run that cancels a scope: every variant ends
// the same, and no step runs twice unless a crash interrupted it.
func TestScopeCrashEveryStep(t *testing.T) {
	t.Parallel()
	durabletest.CrashEveryStep(t, quietConfig(scopeChild), scopeWorkflow, time.Minute)
}

// Replay of journals with cancels (a bbolt file): the code follows them.
func TestScopeReplay(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "scopes.db")
	e, err := durable.Open(path, quietConfig(scopeWorkflow, scopeChild))
	if err != nil {
		t.Fatal(err)
	}
	out, err := durable.Run(testCtx(t), e, scopeWorkflow, "r", 0)
	if want := "step true, child true, timer 0 true, after 42 <nil>"; err != nil || out != want {
		t.Fatalf("Run = %q, %v; want %q", out, err, want)
	}
	mustClose(t, e)
	durabletest.Replay(t, path, scopeWorkflow, scopeChild)
}
