package durable

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable/journal"
)

// TestResumeWhileParking resumes a run in the moment its parked status is
// committed and its live run not yet gone: the resume must load the run
// again, not find the leaving live run and do nothing (which left the run
// parked, as the dashboard's Resume button sometimes did).
func TestResumeWhileParking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var diverge atomic.Bool
		wf := Define("resume-while-parking", func(ctx Context, _ int) (int, error) {
			name := "a"
			if diverge.Load() {
				name = "b"
			}
			if _, err := Step(ctx, name, func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			return Receive[int](ctx, "go")
		})
		cfg := &Config{Workflows: []Definition{wf}}
		store := journal.NewMemory()
		e1, err := New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Start(t.Context(), e1, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // step "a" recorded, waiting for the message
		if err := e1.Close(); err != nil {
			t.Fatal(err)
		}

		entered, release := make(chan struct{}), make(chan struct{})
		crashHook = func(point, runID string, _ int) {
			if point == "parked" && runID == "r" {
				close(entered)
				<-release
			}
		}
		defer func() { crashHook = nil }()
		diverge.Store(true) // the new engine's code calls "b" where the journal has "a"
		e2, err := New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e2.Close()
		// The run waits for a message: a message (on another channel)
		// loads it, and its replay parks it.
		go func() { _ = Send(t.Context(), e2, "r", "nudge", 0) }()
		<-entered
		diverge.Store(false) // the code is fixed; press Resume
		resumed := make(chan error, 1)
		go func() { resumed <- e2.Resume(t.Context(), "r") }()
		synctest.Wait()
		close(release)
		if err := <-resumed; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		info, err := e2.Get(t.Context(), "r")
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != StatusRunning {
			t.Fatalf("after Resume the run is %v (%v), want running", info.Status, info.Err)
		}
		if err := Send(t.Context(), e2, "r", "go", 7); err != nil {
			t.Fatal(err)
		}
		if out, err := Run(t.Context(), e2, wf, "r", 0); err != nil || out != 7 {
			t.Fatalf("Run = %v, %v; want 7", out, err)
		}
	})
}
