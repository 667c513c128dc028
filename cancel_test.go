package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// wantCanceled fails the test unless err matches ErrCanceled (and so
// context.Canceled).
func wantCanceled(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, durable.ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("%s = %v, want an error matching ErrCanceled and context.Canceled", what, err)
	}
}

// once closes a channel once, however often it is called.
type once struct {
	once sync.Once
	c    chan struct{}
}

func newOnce() *once { return &once{c: make(chan struct{})} }

func (o *once) fire() { o.once.Do(func() { close(o.c) }) }

// Cancel during a step: the step's context is canceled, the step ends, and
// the run ends StatusCanceled with an error matching ErrCanceled. From the
// step on, the workflow's Context is Done.
func TestCancelInStep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var stepErrs, ctxErrs valueLog[error]
		started := newOnce()
		wf := durable.Define("tm-cancel-step", func(ctx durable.Context, _ struct{}) (int, error) {
			_, err := durable.Step(ctx, "block", func(sctx context.Context) (int, error) {
				counts.add("block")
				started.fire()
				<-sctx.Done()
				stepErrs.add(sctx.Err())
				return 0, sctx.Err()
			})
			ctxErrs.add(ctx.Err())
			return 0, err
		})
		env := durabletest.New(t, quietConfig(wf))
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		<-started.c
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		_, err = h.Result(t.Context())
		wantCanceled(t, "Result", err)
		info := wantStatus(t, env.Engine, "r", durable.StatusCanceled)
		wantCanceled(t, "RunInfo.Err", info.Err)
		if !info.CancelRequested {
			t.Errorf("RunInfo.CancelRequested = false")
		}
		if got := stepErrs.all(); len(got) != 1 || got[0] != context.Canceled {
			t.Errorf("the step's context ended with %v, want [context.Canceled]", got)
		}
		if got := ctxErrs.all(); len(got) != 1 || got[0] != context.Canceled {
			t.Errorf("the workflow's ctx.Err() after the step = %v, want [context.Canceled]", got)
		}
		if n := counts.get("block"); n != 1 {
			t.Errorf("the step ran %d times, want 1", n)
		}
	})
}

// Cancel while the workflow waits (Sleep, Receive, ReceiveTimeout,
// AwaitAny, Future.Get of a step waiting for a retry): the wait returns
// ErrCanceled at the moment of the cancel, and the run ends Canceled.
func TestCancelInWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wait func(ctx durable.Context) error
	}{
		{"sleep", func(ctx durable.Context) error { return durable.Sleep(ctx, time.Hour) }},
		{"sleep-until", func(ctx durable.Context) error {
			return durable.SleepUntil(ctx, durable.Now(ctx).Add(time.Hour))
		}},
		{"receive", func(ctx durable.Context) error {
			_, err := durable.Receive[string](ctx, "ch")
			return err
		}},
		{"receive-timeout", func(ctx durable.Context) error {
			_, err := durable.ReceiveTimeout[string](ctx, "ch", time.Hour)
			return err
		}},
		{"await-any", func(ctx durable.Context) error {
			_, err := durable.AwaitAny(ctx, durable.OnReceive[string]("ch"), durable.NewTimer(ctx, time.Hour))
			return err
		}},
		{"future-retry-wait", func(ctx durable.Context) error {
			f := durable.Go(ctx, "flaky", func(context.Context) (int, error) {
				return 0, errors.New("try again later")
			}, durable.WithRetry(retryHourly))
			_, err := f.Get(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var counts tally
				var ats valueLog[time.Time]
				wf := durable.Define("tm-cancel-wait", func(ctx durable.Context, _ struct{}) (int, error) {
					err := tc.wait(ctx)
					at, serr := nowStep(durable.WithoutCancel(ctx), &counts, "at")
					if serr != nil {
						return 0, serr
					}
					ats.add(at)
					return 0, err
				})
				env := durabletest.New(t, quietConfig(wf))
				start := time.Now()
				h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Minute)
				if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
					t.Fatalf("Cancel: %v", err)
				}
				_, err = h.Result(t.Context())
				wantCanceled(t, "Result", err)
				wantStatus(t, env.Engine, "r", durable.StatusCanceled)
				if got := ats.all(); len(got) != 1 || !got[0].Equal(start.Add(10*time.Minute)) {
					t.Errorf("the wait returned at %v, want once at start+10m (start %v)", got, start)
				}
			})
		})
	}
}

// retryHourly retries a step once an hour, forever.
var retryHourly = retry.Policy{MaxAttempts: -1, Backoff: backoff.Constant(time.Hour)}

// Cancel during Future.Get of a running Go step: the step's context is
// canceled and Get returns ErrCanceled.
func TestCancelInFutureGet(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var stepErrs valueLog[error]
		started := newOnce()
		wf := durable.Define("tm-cancel-future", func(ctx durable.Context, _ struct{}) (int, error) {
			f := durable.Go(ctx, "slow", func(sctx context.Context) (int, error) {
				started.fire()
				<-sctx.Done()
				stepErrs.add(sctx.Err())
				return 0, sctx.Err()
			})
			return f.Get(ctx)
		})
		env := durabletest.New(t, quietConfig(wf))
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		<-started.c
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(t.Context())
		wantCanceled(t, "Result", err)
		wantStatus(t, env.Engine, "r", durable.StatusCanceled)
		if got := stepErrs.all(); len(got) != 1 || got[0] != context.Canceled {
			t.Errorf("the step's context ended with %v, want [context.Canceled]", got)
		}
	})
}

// Canceling a run cancels its children, and theirs: all end Canceled. A
// Detached child is not canceled and completes.
func TestCancelChildren(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		grandchild := durable.Define("tm-cancel-grandchild", func(ctx durable.Context, _ struct{}) (string, error) {
			return "", durable.Sleep(ctx, 10*time.Hour)
		})
		child := durable.Define("tm-cancel-child", func(ctx durable.Context, _ struct{}) (string, error) {
			return durable.RunChild(ctx, grandchild, "grandchild", struct{}{})
		})
		detached := durable.Define("tm-cancel-detached", func(ctx durable.Context, _ struct{}) (string, error) {
			if err := durable.Sleep(ctx, 2*time.Hour); err != nil {
				return "", err
			}
			return "detached done", nil
		})
		parent := durable.Define("tm-cancel-parent", func(ctx durable.Context, _ struct{}) (string, error) {
			durable.StartChild(ctx, detached, "detached", struct{}{}, durable.Detached())
			return durable.RunChild(ctx, child, "child", struct{}{})
		})
		env := durabletest.New(t, quietConfig(parent, child, grandchild, detached))
		h, err := durable.Start(t.Context(), env.Engine, parent, "parent", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		for _, id := range []string{"parent", "child", "grandchild", "detached"} {
			wantStatus(t, env.Engine, id, durable.StatusRunning)
		}
		if err := env.Engine.Cancel(t.Context(), "parent"); err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(t.Context())
		wantCanceled(t, "the parent's Result", err)
		synctest.Wait()
		for _, id := range []string{"parent", "child", "grandchild"} {
			info := wantStatus(t, env.Engine, id, durable.StatusCanceled)
			wantCanceled(t, fmt.Sprintf("run %q's Err", id), info.Err)
		}
		wantStatus(t, env.Engine, "detached", durable.StatusRunning)
		out, err := result(t, env.Engine, detached, "detached", struct{}{})
		if err != nil || out != "detached done" {
			t.Errorf("the detached child returned %q, %v; want it to complete", out, err)
		}
	})
}

// Cancel of a run that is not loaded: its engine is closed, and an engine
// without its workflow journals the request. An engine with the workflow
// resumes the run, which ends Canceled at once.
func TestCancelNotLoaded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var ats valueLog[time.Time]
		wf := durable.Define("tm-cancel-unloaded", func(ctx durable.Context, _ struct{}) (int, error) {
			err := durable.Sleep(ctx, time.Hour)
			at, serr := nowStep(durable.WithoutCancel(ctx), &counts, "at")
			if serr != nil {
				return 0, serr
			}
			ats.add(at)
			return 0, err
		})
		withWF := quietConfig(wf)
		env := durabletest.New(t, withWF)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if err := env.Engine.Close(); err != nil {
			t.Fatal(err)
		}
		if err := env.Engine.Cancel(t.Context(), "r"); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Cancel on a closed engine = %v, want ErrClosed", err)
		}
		env.Config = quietConfig() // an engine without the workflow
		env.Restart()
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatalf("Cancel via an engine without the workflow: %v", err)
		}
		synctest.Wait()
		if info := mustGet(t, env.Engine, "r"); !info.CancelRequested || info.Status.Terminal() {
			t.Fatalf("after Cancel: %+v, want an unfinished run with CancelRequested", info)
		}
		time.Sleep(10 * time.Minute)
		resumed := time.Now()
		env.Config = withWF
		env.Restart()
		_, err := result(t, env.Engine, wf, "r", struct{}{})
		wantCanceled(t, "Result", err)
		wantStatus(t, env.Engine, "r", durable.StatusCanceled)
		if got := ats.all(); len(got) != 1 || !got[0].Equal(resumed) {
			t.Errorf("the sleep returned at %v, want once, at the resume %v", got, resumed)
		}
	})
}

// Cancel of a canceled run does nothing; of a completed or failed run
// fails with ErrFinished; of an unknown id with ErrNotFound.
func TestCancelFinishedOrUnknown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("tm-cancel-states", func(ctx durable.Context, what string) (string, error) {
			switch what {
			case "fail":
				return "", errors.New("failed on purpose")
			case "wait":
				return "", durable.Sleep(ctx, time.Hour)
			}
			return "done", nil
		})
		env := durabletest.New(t, quietConfig(wf))
		ctx := t.Context()
		if _, err := durable.Run(ctx, env.Engine, wf, "completed", "complete"); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Run(ctx, env.Engine, wf, "failed", "fail"); err == nil {
			t.Fatal("the failing run did not fail")
		}
		h, err := durable.Start(ctx, env.Engine, wf, "canceled", "wait")
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Engine.Cancel(ctx, "canceled"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Fatalf("Result = %v, want ErrCanceled", err)
		}

		if err := env.Engine.Cancel(ctx, "canceled"); err != nil {
			t.Errorf("Cancel of a canceled run = %v, want nil", err)
		}
		for _, id := range []string{"completed", "failed"} {
			if err := env.Engine.Cancel(ctx, id); !errors.Is(err, durable.ErrFinished) {
				t.Errorf("Cancel of the %s run = %v, want ErrFinished", id, err)
			}
		}
		if err := env.Engine.Cancel(ctx, "no-such-run"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Cancel of an unknown run = %v, want ErrNotFound", err)
		}
		wantStatus(t, env.Engine, "completed", durable.StatusCompleted)
		wantStatus(t, env.Engine, "failed", durable.StatusFailed)
		wantStatus(t, env.Engine, "canceled", durable.StatusCanceled)
	})
}

// A workflow that handles the cancellation: cleanup steps on
// WithoutCancel run, once each, even with restarts right after the cancel
// and between the cleanup steps, and the run completes.
func TestCancelCleanupWithoutCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var seen valueLog[error] // what the first Sleep returned, per execution
		wf := durable.Define("tm-cancel-cleanup", func(ctx durable.Context, _ struct{}) (string, error) {
			err := durable.Sleep(ctx, time.Hour)
			seen.add(err)
			if !errors.Is(err, durable.ErrCanceled) {
				return "", fmt.Errorf("the sleep returned %v, want the cancellation", err)
			}
			clean := durable.WithoutCancel(ctx)
			for _, name := range []string{"cleanup1", "cleanup2"} {
				if err := durable.Sleep(clean, time.Minute); err != nil {
					return "", err
				}
				if _, err := durable.Step(clean, name, func(sctx context.Context) (int, error) {
					counts.add(name)
					return 0, sctx.Err()
				}); err != nil {
					return "", err
				}
			}
			return "cleaned up", nil
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		env.Restart() // right after the cancel
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if n := counts.get("cleanup1"); n != 1 {
			t.Fatalf("cleanup1 ran %d times, want 1", n)
		}
		env.Restart() // between the cleanup steps
		out, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil || out != "cleaned up" {
			t.Fatalf("Result = %q, %v; want the cleanup's result", out, err)
		}
		info := wantStatus(t, env.Engine, "r", durable.StatusCompleted)
		if info.Err != nil || !info.CancelRequested {
			t.Errorf("RunInfo: Err %v, CancelRequested %v; want nil, true", info.Err, info.CancelRequested)
		}
		for _, name := range []string{"cleanup1", "cleanup2"} {
			if n := counts.get(name); n != 1 {
				t.Errorf("%s ran %d times, want 1", name, n)
			}
		}
		for i, err := range seen.all() {
			if !errors.Is(err, durable.ErrCanceled) {
				t.Errorf("execution %d: the sleep returned %v, want ErrCanceled", i, err)
			}
		}
	})
}

// ctxState is what the workflow observes of its Context.
type ctxState struct {
	Err              error
	Done             bool
	DetachedErr      error
	DetachedDoneNil  bool
	StepErr, SendErr error // a Step and a Receive called after delivery
}

func observe(ctx durable.Context) ctxState {
	s := ctxState{Err: ctx.Err(), DetachedErr: durable.WithoutCancel(ctx).Err()}
	select {
	case <-ctx.Done():
		s.Done = true
	default:
	}
	s.DetachedDoneNil = durable.WithoutCancel(ctx).Done() == nil
	return s
}

// Context.Done and Err: open and nil before the cancellation reaches the
// workflow, closed and context.Canceled after; durable calls on the
// Context then return ErrCanceled at once without running anything;
// WithoutCancel's Context is never Done.
func TestCancelContextDoneErr(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var states valueLog[ctxState]
		var ats valueLog[time.Time]
		wf := durable.Define("tm-cancel-ctx", func(ctx durable.Context, _ struct{}) (int, error) {
			states.add(observe(ctx))
			err := durable.Sleep(ctx, time.Hour)
			after := observe(ctx)
			_, after.StepErr = durable.Step(ctx, "never", func(context.Context) (int, error) {
				counts.add("never")
				return 0, nil
			})
			_, after.SendErr = durable.Receive[string](ctx, "ch")
			if serr := durable.Sleep(ctx, time.Hour); !errors.Is(serr, durable.ErrCanceled) {
				after.SendErr = fmt.Errorf("a second sleep returned %v", serr)
			}
			states.add(after)
			at, serr := nowStep(durable.WithoutCancel(ctx), &counts, "at")
			if serr != nil {
				return 0, serr
			}
			ats.add(at)
			return 0, err
		})
		env := durabletest.New(t, quietConfig(wf))
		start := time.Now()
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		_, err := result(t, env.Engine, wf, "r", struct{}{})
		wantCanceled(t, "Result", err)
		got := states.all()
		if len(got) != 2 {
			t.Fatalf("observed the Context %d times, want 2", len(got))
		}
		before, after := got[0], got[1]
		if before.Err != nil || before.Done {
			t.Errorf("before the cancel: Err %v, Done closed %v; want nil, open", before.Err, before.Done)
		}
		if after.Err != context.Canceled || !after.Done {
			t.Errorf("after the cancel: Err %v, Done closed %v; want context.Canceled, closed", after.Err, after.Done)
		}
		for _, s := range got {
			if s.DetachedErr != nil || !s.DetachedDoneNil {
				t.Errorf("WithoutCancel: Err %v, Done nil %v; want nil, nil", s.DetachedErr, s.DetachedDoneNil)
			}
		}
		wantCanceled(t, "a Step after the cancel", after.StepErr)
		wantCanceled(t, "a Receive after the cancel", after.SendErr)
		if n := counts.get("never"); n != 0 {
			t.Errorf("a step called after the cancel ran %d times", n)
		}
		if a := ats.all(); len(a) != 1 || !a[0].Equal(start.Add(10*time.Minute)) {
			t.Errorf("the calls after the cancel ended at %v, want at once (start+10m)", a)
		}
	})
}

// recKey is a journal record without its payload, for comparisons.
type recKey struct {
	Pos, Seq    uint32
	Kind, Flags uint8
	Name        string
}

func records(t *testing.T, s journal.Store, id string) []recKey {
	t.Helper()
	recs, err := s.Records(context.Background(), id)
	if err != nil {
		t.Fatalf("Records(%q): %v", id, err)
	}
	out := make([]recKey, len(recs))
	for i, r := range recs {
		out[i] = recKey{r.Pos, r.Seq, r.Kind, r.Flags, r.Name}
	}
	return out
}

// Replay after a cancel is deterministic: a restart after the cancel was
// delivered takes the same path (the cancel reaches the same point), runs
// no extra step and writes no extra record.
func TestCancelReplayDeterministic(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var reached valueLog[int]
		wf := durable.Define("tm-cancel-replay", func(ctx durable.Context, _ struct{}) (int, error) {
			for i := range 3 {
				if _, err := durable.Step(ctx, fmt.Sprintf("s%d", i), func(context.Context) (int, error) {
					counts.add(fmt.Sprintf("s%d", i))
					return i, nil
				}); err != nil {
					return 0, err
				}
				if err := durable.Sleep(ctx, time.Hour); err != nil {
					reached.add(i)
					if err := durable.Sleep(durable.WithoutCancel(ctx), time.Hour); err != nil {
						return 0, err
					}
					return i, err
				}
			}
			return 3, nil
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(90 * time.Minute)
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		before := records(t, env.Store, "r")
		env.Restart()
		synctest.Wait()
		if after := records(t, env.Store, "r"); !slices.Equal(before, after) {
			t.Errorf("replay changed the journal:\nbefore %v\nafter  %v", before, after)
		}
		_, err := result(t, env.Engine, wf, "r", struct{}{})
		wantCanceled(t, "Result", err)
		wantStatus(t, env.Engine, "r", durable.StatusCanceled)
		if got := reached.all(); !slices.Equal(got, []int{1, 1}) {
			t.Errorf("the cancel reached the workflow in sleeps %v, want [1 1] (live, then replayed)", got)
		}
		for name, want := range map[string]int{"s0": 1, "s1": 1, "s2": 0} {
			if n := counts.get(name); n != want {
				t.Errorf("step %s ran %d times, want %d", name, n, want)
			}
		}
	})
}

// A run deadline (WithRunTimeout, WithDeadline) cancels the run with
// ErrDeadlineExceeded exactly when it passes, across restarts; a run
// that finishes first is not affected.
func TestDeadlineRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		sleep     time.Duration
		opts      func(start time.Time) []durable.StartOption
		closeAt   time.Duration // 0: no restart
		reopenAt  time.Duration
		canceled  bool
		wantAt    time.Duration // when the sleep returned
		wantLimit time.Duration // RunInfo.Deadline - start
	}{
		{
			name: "timeout", sleep: 2 * time.Hour, canceled: true, wantAt: time.Hour, wantLimit: time.Hour,
			opts: func(time.Time) []durable.StartOption { return []durable.StartOption{durable.WithRunTimeout(time.Hour)} },
		},
		{
			name: "timeout-restart", sleep: 2 * time.Hour, closeAt: 30 * time.Minute, reopenAt: 40 * time.Minute,
			canceled: true, wantAt: time.Hour, wantLimit: time.Hour,
			opts: func(time.Time) []durable.StartOption { return []durable.StartOption{durable.WithRunTimeout(time.Hour)} },
		},
		{
			name: "passed-while-down", sleep: 2 * time.Hour, closeAt: 30 * time.Minute, reopenAt: 90 * time.Minute,
			canceled: true, wantAt: 90 * time.Minute, wantLimit: time.Hour,
			opts: func(time.Time) []durable.StartOption { return []durable.StartOption{durable.WithRunTimeout(time.Hour)} },
		},
		{
			name: "deadline-earlier-wins", sleep: 2 * time.Hour, closeAt: 10 * time.Minute, reopenAt: 20 * time.Minute,
			canceled: true, wantAt: 45 * time.Minute, wantLimit: 45 * time.Minute,
			opts: func(start time.Time) []durable.StartOption {
				return []durable.StartOption{durable.WithDeadline(start.Add(45 * time.Minute)), durable.WithRunTimeout(time.Hour)}
			},
		},
		{
			name: "finishes-first", sleep: 30 * time.Minute, closeAt: 10 * time.Minute, reopenAt: 20 * time.Minute,
			wantAt: 30 * time.Minute, wantLimit: time.Hour,
			opts: func(time.Time) []durable.StartOption { return []durable.StartOption{durable.WithRunTimeout(time.Hour)} },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var counts tally
				var ats valueLog[time.Time]
				var ctxErrs valueLog[error]
				wf := durable.Define("tm-deadline", func(ctx durable.Context, _ struct{}) (string, error) {
					err := durable.Sleep(ctx, tc.sleep)
					ctxErrs.add(ctx.Err())
					at, serr := nowStep(durable.WithoutCancel(ctx), &counts, "at")
					if serr != nil {
						return "", serr
					}
					ats.add(at)
					return "slept", err
				})
				env := durabletest.New(t, quietConfig(wf))
				start := time.Now()
				if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}, tc.opts(start)...); err != nil {
					t.Fatal(err)
				}
				if tc.closeAt > 0 {
					time.Sleep(tc.closeAt)
					if err := env.Engine.Close(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(tc.reopenAt - tc.closeAt)
					env.Restart()
				}
				out, err := result(t, env.Engine, wf, "r", struct{}{})
				info := mustGet(t, env.Engine, "r")
				if !info.Deadline.Equal(start.Add(tc.wantLimit)) {
					t.Errorf("RunInfo.Deadline = start+%v, want start+%v", info.Deadline.Sub(start), tc.wantLimit)
				}
				if got := ats.all(); len(got) != 1 || !got[0].Equal(start.Add(tc.wantAt)) {
					t.Errorf("the sleep returned at %v, want once at start+%v (start %v)", got, tc.wantAt, start)
				}
				if !tc.canceled {
					if err != nil || out != "slept" || info.Status != durable.StatusCompleted {
						t.Errorf("Result = %q, %v, status %v; want it completed", out, err, info.Status)
					}
					time.Sleep(2 * time.Hour) // past the deadline: nothing happens
					synctest.Wait()
					wantStatus(t, env.Engine, "r", durable.StatusCompleted)
					return
				}
				if !errors.Is(err, durable.ErrDeadlineExceeded) || !errors.Is(err, durable.ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Result = %v, want an error matching ErrDeadlineExceeded, ErrCanceled and context.DeadlineExceeded", err)
				}
				if info.Status != durable.StatusCanceled || !errors.Is(info.Err, durable.ErrDeadlineExceeded) {
					t.Errorf("RunInfo: status %v, Err %v; want canceled with ErrDeadlineExceeded", info.Status, info.Err)
				}
				if got := ctxErrs.all(); len(got) != 1 || got[0] != context.DeadlineExceeded {
					t.Errorf("ctx.Err() after the deadline = %v, want [context.DeadlineExceeded]", got)
				}
			})
		})
	}
}

// Cancel of runs evicted from the run cache (Config.MaxCachedRuns): each
// is loaded again and ends Canceled at once.
func TestCancelEvictedRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var ats valueLog[time.Time]
		var counts tally
		wf := durable.Define("tm-cancel-evicted", func(ctx durable.Context, _ struct{}) (int, error) {
			err := durable.Sleep(ctx, time.Hour)
			at, serr := nowStep(durable.WithoutCancel(ctx), &counts, "at")
			if serr != nil {
				return 0, serr
			}
			ats.add(at)
			return 0, err
		})
		cfg := quietConfig(wf)
		cfg.MaxCachedRuns = 1
		env := durabletest.New(t, cfg)
		start := time.Now()
		const runs = 3
		for i := range runs {
			if _, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprint("r", i), struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Minute)
		for i := range runs {
			if err := env.Engine.Cancel(t.Context(), fmt.Sprint("r", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range runs {
			_, err := result(t, env.Engine, wf, fmt.Sprint("r", i), struct{}{})
			wantCanceled(t, fmt.Sprint("run r", i), err)
		}
		for _, at := range ats.all() {
			if !at.Equal(start.Add(10 * time.Minute)) {
				t.Errorf("a canceled sleep returned at start+%v, want start+10m", at.Sub(start))
			}
		}
		if n := len(ats.all()); n != runs {
			t.Errorf("%d sleeps returned, want %d", n, runs)
		}
	})
}

// Cancel of a parent that is not loaded, journaled by an engine without
// the workflows: when an engine with them resumes the runs, the parent
// and its children, transitively, end Canceled.
func TestCancelNotLoadedWithChildren(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		grandchild := durable.Define("tm-unloaded-grandchild", func(ctx durable.Context, _ struct{}) (string, error) {
			return "", durable.Sleep(ctx, 10*time.Hour)
		})
		child := durable.Define("tm-unloaded-child", func(ctx durable.Context, _ struct{}) (string, error) {
			return durable.RunChild(ctx, grandchild, "grandchild", struct{}{})
		})
		parent := durable.Define("tm-unloaded-parent", func(ctx durable.Context, _ struct{}) (string, error) {
			return durable.RunChild(ctx, child, "child", struct{}{})
		})
		all := quietConfig(parent, child, grandchild)
		env := durabletest.New(t, all)
		if _, err := durable.Start(t.Context(), env.Engine, parent, "parent", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		env.Config = quietConfig()
		env.Restart()
		if err := env.Engine.Cancel(t.Context(), "parent"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		env.Config = all
		env.Restart()
		_, err := result(t, env.Engine, parent, "parent", struct{}{})
		wantCanceled(t, "the parent's Result", err)
		synctest.Wait()
		for _, id := range []string{"parent", "child", "grandchild"} {
			wantStatus(t, env.Engine, id, durable.StatusCanceled)
		}
	})
}

// Cancel while the workflow waits in AwaitAll for a timer: AwaitAll
// journals where the cancellation reached it and returns at once.
func TestCancelInAwaitAll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("tm-cancel-await-all", func(ctx durable.Context, _ struct{}) (int, error) {
			return 0, durable.AwaitAll(ctx, durable.NewTimer(ctx, 10*time.Hour))
		})
		env := durabletest.New(t, quietConfig(wf))
		start := time.Now()
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if err := env.Engine.Cancel(t.Context(), "r"); err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(t.Context())
		wantCanceled(t, "Result", err)
		wantStatus(t, env.Engine, "r", durable.StatusCanceled)
		if d := time.Since(start); d != 10*time.Minute {
			t.Errorf("the run ended at start+%v, want at the cancel, start+10m", d)
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
