package durable_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// A run started with StartAfter executes nothing before its time, across
// a restart in the middle of the wait and a downtime that spans it.
func TestStartAfterSurvivesRestarts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var began atomic.Int64
		wf := durable.Define("delayed", func(ctx durable.Context, in string) (string, error) {
			calls.Add(1)
			now := durable.Now(ctx)
			began.Store(now.UnixNano())
			return durable.Step(ctx, "hello", func(context.Context) (string, error) { return "hello " + in, nil })
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		ctx := t.Context()
		t0 := time.Now()
		if _, err := durable.Start(ctx, env.Engine, wf, "later", "bob", durable.StartAfter(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		info, err := env.Engine.Get(ctx, "later")
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != durable.StatusRunning || !info.WakeAt.Equal(t0.Add(3*time.Hour).UTC()) {
			t.Fatalf("before the start: status %v, WakeAt %v; want running, %v", info.Status, info.WakeAt, t0.Add(3*time.Hour).UTC())
		}
		if len(info.Pending) != 1 || info.Pending[0].Kind != "start" || !info.Pending[0].Due.Equal(info.WakeAt) {
			t.Fatalf("before the start: Pending = %+v, want one start due at WakeAt", info.Pending)
		}
		time.Sleep(time.Hour)
		env.Restart()
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("workflow called %d times before its start time", n)
		}
		// Down from 2h to 5h: the start falls due while no engine runs.
		if err := env.Engine.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Hour)
		env.Restart()
		h, err := durable.Attach(ctx, env.Engine, wf, "later")
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Result(ctx)
		if err != nil || out != "hello bob" {
			t.Fatalf("Result = %q, %v; want hello bob", out, err)
		}
		if got := time.Unix(0, began.Load()); got.Before(t0.Add(3 * time.Hour)) {
			t.Errorf("the workflow began at %v, before its start time %v", got, t0.Add(3*time.Hour))
		}
		info, _ = env.Engine.Get(ctx, "later")
		if !info.WakeAt.IsZero() {
			t.Errorf("WakeAt = %v after the run finished, want zero", info.WakeAt)
		}
	})
}

// StartAt starts at exactly its time when the engine runs then; a time in
// the past starts at once; a second start of the id changes nothing.
func TestStartAtExactTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("at", func(ctx durable.Context, in int) (time.Time, error) {
			return durable.Now(ctx), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		ctx := t.Context()
		at := time.Now().Add(90 * time.Minute).Truncate(time.Second)
		h, err := durable.Start(ctx, env.Engine, wf, "at", 1, durable.StartAt(at))
		if err != nil {
			t.Fatal(err)
		}
		// Start again without the option: the id exists, nothing changes.
		if _, err := durable.Start(ctx, env.Engine, wf, "at", 2); err != nil {
			t.Fatal(err)
		}
		got, err := h.Result(ctx)
		if err != nil || !got.Equal(at.UTC()) {
			t.Fatalf("began at %v, %v; want %v", got, err, at.UTC())
		}
		past := time.Now().Add(-time.Hour)
		got, err = durable.Run(ctx, env.Engine, wf, "past", 0)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := durable.Start(ctx, env.Engine, wf, "past2", 0, durable.StartAt(past))
		if err != nil {
			t.Fatal(err)
		}
		if got2, err := h2.Result(ctx); err != nil || !got2.Equal(got) {
			t.Errorf("StartAt(past) began at %v, %v; want at once (%v)", got2, err, got)
		}
	})
}

// A run canceled before its start time ends canceled and never runs.
func TestStartAfterCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		wf := durable.Define("never", func(ctx durable.Context, in int) (int, error) {
			calls.Add(1)
			return in, nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, wf, "never", 1, durable.StartAfter(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		if err := env.Engine.Cancel(ctx, "never"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Fatalf("Result = %v, want ErrCanceled", err)
		}
		info, _ := env.Engine.Get(ctx, "never")
		if info.Status != durable.StatusCanceled || calls.Load() != 0 {
			t.Fatalf("status %v after %d calls; want canceled, 0 calls", info.Status, calls.Load())
		}
	})
}

// Messages sent before the start wait in the inbox; a delayed child
// starts at its time.
func TestStartAfterMessagesAndChild(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("child", func(ctx durable.Context, in int) (time.Time, error) {
			return durable.Now(ctx), nil
		})
		parent := durable.Define("parent", func(ctx durable.Context, in int) (time.Duration, error) {
			start := durable.Now(ctx)
			msg, err := durable.Receive[int](ctx, "m")
			if err != nil {
				return 0, err
			}
			began, err := durable.StartChild(ctx, child, "", msg, durable.StartAfter(time.Duration(msg)*time.Minute)).Get(ctx)
			return began.Sub(start), err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, parent, "p", 0, durable.StartAfter(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, env.Engine, "p", "m", 30); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(10 * time.Minute)
		env.Restart()
		h, err = durable.Attach(ctx, env.Engine, parent, "p")
		if err != nil {
			t.Fatal(err)
		}
		if d, err := h.Result(ctx); err != nil || d != 30*time.Minute {
			t.Fatalf("child began %v after the parent, %v; want 30m", d, err)
		}
	})
}
