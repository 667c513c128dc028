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
	"github.com/durable-go/durable/durabletest"
)

// Regression tests for engine bugs that the torture harness and FuzzReplay
// found.

// Found by FuzzReplay: after ContinueAsNew, a child started with the
// default id got the id of the previous epoch's child at that position,
// which had finished and delivered its result to the previous epoch's
// journal: the new epoch waited for it forever. Each epoch now starts
// children of its own; a child id given explicitly that names an earlier
// epoch's finished child returns that child's result (an id never runs
// twice) instead of hanging.
func TestTortureChildAcrossContinueAsNew(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		var childRuns atomic.Int32
		child := durable.Define("tt-can-child", func(ctx durable.Context, in int) (int, error) {
			childRuns.Add(1)
			return in * 10, nil
		})
		type state struct {
			Epoch int
			Got   []string
		}
		wf := durable.Define("tt-can", func(ctx durable.Context, s state) (string, error) {
			a, err := durable.RunChild(ctx, child, "", s.Epoch) // a new child in each epoch
			if err != nil {
				return "", err
			}
			b, err := durable.RunChild(ctx, child, ctx.RunID()+"-fixed", s.Epoch) // one child for all epochs
			if err != nil {
				return "", err
			}
			s.Got = append(s.Got, fmt.Sprintf("%d/%d", a, b))
			if s.Epoch < 2 {
				s.Epoch++
				return "", durable.ContinueAsNew(ctx, s)
			}
			return strings.Join(s.Got, " "), nil
		})
		e := open(t, config(wf, child))
		got, err := durable.Run(testCtx(t), e, wf, "can-1", state{})
		if want := "0/0 10/0 20/0"; err != nil || got != want {
			t.Fatalf("Run = %q, %v; want %q", got, err, want)
		}
		if n := childRuns.Load(); n != 4 {
			t.Errorf("children executed %d times, want 4 (one per epoch, and the fixed one once)", n)
		}
		for _, id := range []string{"can-1/0", "can-1/1.0", "can-1/2.0", "can-1-fixed"} {
			if info := mustGet(t, e, id); info.Status != durable.StatusCompleted || info.Parent != "can-1" {
				t.Errorf("child %s: %v, parent %q; want completed, parent can-1", id, info.Status, info.Parent)
			}
		}
	})
}

// Found by the kill harness (1,000 kills, seed 1795730348527721622): a run
// whose deadline canceled it, killed during its cleanup step, ended
// failed instead of canceled. After the restart the replay delivered the
// recorded cancellation, the workflow returned it, and the run finished
// before the deadline's timer fired again: the engine looked only at the
// live cancel request. Here the clock is set back before the restart, so
// the timer cannot fire before the run ends.
func TestTortureDeadlineCanceledAcrossRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := durabletest.NewClock(start)
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		wf := durable.Define("tt-deadline", func(ctx durable.Context, _ int) (int, error) {
			err := durable.Sleep(ctx, time.Hour)
			_, cerr := durable.Step(durable.WithoutCancel(ctx), "cleanup", func(sctx context.Context) (int, error) {
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return 1, nil
			})
			if cerr != nil {
				return 0, cerr
			}
			return 0, err
		})
		cfg := config(wf)
		cfg.Clock = clock
		e := open(t, cfg)
		if _, err := durable.Start(testCtx(t), e, wf, "dl-1", 0, durable.WithRunTimeout(time.Minute)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute) // the deadline passes: the sleep is canceled
		recv(t, entered, "the cleanup step")
		mustClose(t, e)

		block.Store(false)
		clock.Set(start) // before the deadline: its timer does not fire
		e = open(t, cfg)
		_, err := durable.Run(testCtx(t), e, wf, "dl-1", 0)
		if !errors.Is(err, durable.ErrDeadlineExceeded) {
			t.Errorf("Run = %v; want ErrDeadlineExceeded", err)
		}
		if info := mustGet(t, e, "dl-1"); info.Status != durable.StatusCanceled {
			t.Errorf("status %v (%v); want canceled", info.Status, info.Err)
		}
	})
}
