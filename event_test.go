package durable_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// progress publishes "stage" twice, an hour apart, then waits for a
// message and publishes the answer to it.
var progress = durable.Define("progress", func(ctx durable.Context, n int) (int, error) {
	if err := durable.SetEvent(ctx, "stage", "loading"); err != nil {
		return 0, err
	}
	if err := durable.Sleep(ctx, time.Hour); err != nil {
		return 0, err
	}
	if err := durable.SetEvent(ctx, "stage", "computing"); err != nil {
		return 0, err
	}
	q, err := durable.Receive[int](ctx, "question")
	if err != nil {
		return 0, err
	}
	if err := durable.SetEvent(ctx, "answer", q*n); err != nil {
		return 0, err
	}
	return q * n, nil
})

func TestEventWaitBeforeAndAfterPublication(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{progress}})
		ctx := t.Context()
		// Waiting before the run publishes (before it exists, even, the
		// answer is not there: ErrNotFound).
		if _, err := durable.GetEvent[string](ctx, env.Engine, "p", "stage", time.Minute); !errors.Is(err, durable.ErrNotFound) {
			t.Fatalf("GetEvent of a missing run = %v, want ErrNotFound", err)
		}
		if _, err := durable.Start(ctx, env.Engine, progress, "p", 6); err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		go func() {
			v, err := durable.GetEvent[int](ctx, env.Engine, "p", "answer", 3*time.Hour)
			if err != nil {
				t.Errorf("GetEvent(answer): %v", err)
			}
			got <- v
		}()
		synctest.Wait()
		// After publication: the latest value.
		if v, err := durable.GetEvent[string](ctx, env.Engine, "p", "stage", 0); err != nil || v != "loading" {
			t.Fatalf("stage = %q, %v; want loading", v, err)
		}
		// A wait that ends with the second publication.
		start := time.Now()
		time.Sleep(time.Minute)
		if _, err := durable.GetEvent[int](ctx, env.Engine, "p", "answer", 10*time.Minute); !errors.Is(err, durable.ErrTimeout) {
			t.Fatalf("GetEvent(answer) before it is set = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d != 11*time.Minute {
			t.Errorf("the timeout took %v of virtual time, want 10m after 1m", d)
		}
		time.Sleep(time.Hour)
		if v, err := durable.GetEvent[string](ctx, env.Engine, "p", "stage", 0); err != nil || v != "computing" {
			t.Fatalf("stage = %q, %v; want computing (last value wins)", v, err)
		}
		if err := durable.Send(ctx, env.Engine, "p", "question", 7); err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != 42 {
			t.Fatalf("answer = %d, want 42", v)
		}
		// A finished run keeps its events, and refuses to wait for one it
		// never set.
		if _, err := durable.GetEvent[string](ctx, env.Engine, "p", "nope", time.Hour); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("unset event of a finished run = %v, want ErrFinished", err)
		}
		if v, err := durable.GetEvent[int](ctx, env.Engine, "p", "answer", 0); err != nil || v != 42 {
			t.Errorf("answer after the end = %d, %v", v, err)
		}
		if _, err := durable.GetEvent[int](ctx, env.Engine, "p", "stage", 0); !errors.Is(err, durable.ErrPayload) {
			t.Errorf("stage into an int = %v, want ErrPayload", err)
		}
	})
}

// Events survive a restart, replay does not publish them again, and a
// waiter on the new engine is woken by a publication after the restart.
func TestEventAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{progress}})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, progress, "p", 2); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		env.Restart()
		if v, err := durable.GetEvent[string](ctx, env.Engine, "p", "stage", 0); err != nil || v != "loading" {
			t.Fatalf("stage after restart = %q, %v", v, err)
		}
		if v, err := durable.GetEvent[string](ctx, env.Engine, "p", "stage", 2*time.Hour); err != nil {
			t.Fatal(err)
		} else if v != "loading" {
			t.Fatalf("stage = %q", v)
		}
		env.SendAfter(2*time.Hour, "p", "question", 21)
		v, err := durable.GetEvent[int](ctx, env.Engine, "p", "answer", 3*time.Hour)
		if err != nil || v != 42 {
			t.Fatalf("answer = %d, %v; want 42", v, err)
		}
		h, err := durable.Attach(ctx, env.Engine, progress, "p")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); err != nil {
			t.Fatal(err)
		}
		// Each SetEvent is one record: three, none doubled by the replay.
		hist, err := durable.History(ctx, env.Store, "p")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range hist {
			if ev.Kind == "event" {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%d event records, want 3: %+v", n, hist)
		}
	})
}

// GetEvent names its bad arguments.
func TestEventBadArguments(t *testing.T) {
	t.Parallel()
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var ae *durable.ArgError
	if _, err := durable.GetEvent[int](t.Context(), e, "r", "", 0); !errors.As(err, &ae) {
		t.Errorf("empty key: %v, want *ArgError", err)
	}
	if _, err := durable.GetEvent[int](t.Context(), e, "", "k", 0); !errors.As(err, &ae) {
		t.Errorf("empty id: %v, want *ArgError", err)
	}
}
