package durable_test

// Concurrency inside workflows: futures and fan-out/fan-in (Go, AwaitAll),
// selects (AwaitAny over futures, timers and receive cases), child
// workflows and sagas, across restarts (a new engine on the same journal)
// and real crashes (SIGKILL of a child process), and with a run cache of
// one (every waiting run but one is evicted and replayed when woken).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/retry"
)

// sagaMatrix: a workflow of four steps, each followed by saga.Add(undo)
// and a one-second sleep, fails for good at step k. Exactly the undos of
// the steps before k run, once each, last first. The five cases (k = 4:
// no failure) run at once in one engine.
func sagaMatrix(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		logs := map[string]*lineLog{}
		for k := range 5 {
			logs[fmt.Sprintf("saga-%d", k)] = &lineLog{}
		}
		logOf := func(ctx context.Context) *lineLog {
			info, _ := durable.StepInfoFrom(ctx)
			return logs[info.RunID]
		}
		wf := durable.Define("cc-saga", func(ctx durable.Context, k int) (string, error) {
			saga := durable.NewSaga(ctx)
			for i := range 4 {
				_, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(sctx context.Context) (int, error) {
					logOf(sctx).add("do %d", i)
					if i == k {
						return 0, retry.Permanent(fmt.Errorf("step %d failed", i))
					}
					return i, nil
				})
				if err != nil {
					return "", saga.Compensate(err)
				}
				saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
					logOf(sctx).add("undo %d", i)
					return nil
				})
				if err := durable.Sleep(ctx, time.Second); err != nil {
					return "", saga.Compensate(err)
				}
			}
			return "done", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		hs := make([]*durable.Handle[string], 5)
		for k := range hs {
			h, err := durable.Start(ctx, env.Engine, wf, fmt.Sprintf("saga-%d", k), k)
			if err != nil {
				t.Fatal(err)
			}
			hs[k] = h
		}
		for k, h := range hs {
			id := fmt.Sprintf("saga-%d", k)
			out, err := h.Result(ctx)
			var want []string
			for i := 0; i <= min(k, 3); i++ {
				want = append(want, fmt.Sprintf("do %d", i))
			}
			if k < 4 {
				for i := k - 1; i >= 0; i-- {
					want = append(want, fmt.Sprintf("undo %d", i))
				}
			}
			if k == 4 {
				if err != nil || out != "done" {
					t.Errorf("%s: %q, %v; want done", id, out, err)
				}
			} else if wantErr := fmt.Sprintf(`durable: cc-saga(%s) → step "step-%d" failed after 1 attempt: step %d failed`, id, k, k); err == nil || err.Error() != wantErr {
				t.Errorf("%s: error %v, want %q", id, err, wantErr)
			}
			if got := logs[id].get(); !slices.Equal(got, want) {
				t.Errorf("%s (failure at step %d): ran %q, want %q", id, k, got, want)
			}
		}
	})
}

func TestSagaCompensatesInReverseAtEachFailurePoint(t *testing.T) {
	t.Parallel()
	sagaMatrix(t, 0)
}

// sagaWorkflow fails at its fourth step; its second compensation
// (undo-1) blocks while blockUndo reports true, until the engine stops.
func sagaWorkflow(effect func(format string, args ...any), blockUndo func() bool, compensating chan<- struct{}) *durable.Workflow[string, string] {
	return durable.Define("cc-saga-restart", func(ctx durable.Context, _ string) (string, error) {
		saga := durable.NewSaga(ctx)
		for i := range 4 {
			_, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(context.Context) (int, error) {
				effect("do %d", i)
				if i == 3 {
					return 0, retry.Permanent(fmt.Errorf("step %d failed", i))
				}
				return i, nil
			})
			if err != nil {
				return "", saga.Compensate(err)
			}
			saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
				effect("undo %d start", i)
				if i == 1 && blockUndo() {
					compensating <- struct{}{} // undo-2 is recorded: its step returned
					<-sctx.Done()
					return sctx.Err()
				}
				effect("undo %d done", i)
				return nil
			})
		}
		return "done", nil
	})
}

// sagaEffectsOK checks the effects of sagaWorkflow after a restart in
// the middle of its compensation: lines in order.
func sagaEffectsOK(t *testing.T, lines []string) {
	t.Helper()
	counts := map[string]int{}
	var done []string
	for _, l := range lines {
		counts[l]++
		if strings.HasSuffix(l, " done") {
			done = append(done, l)
		}
	}
	want := map[string]int{
		"do 0": 1, "do 1": 1, "do 2": 1, "do 3": 1,
		"undo 2 start": 1, "undo 2 done": 1, // recorded before the restart: not run again
		"undo 1 start": 2, "undo 1 done": 1, // interrupted, run again
		"undo 0 start": 1, "undo 0 done": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("effects %v\nwant %v", counts, want)
	}
	if wantDone := []string{"undo 2 done", "undo 1 done", "undo 0 done"}; !slices.Equal(done, wantDone) {
		t.Errorf("compensations finished in the order %q, want %q", done, wantDone)
	}
}

func sagaRestart(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var lg lineLog
		var block atomic.Bool
		block.Store(true)
		compensating := make(chan struct{}, 1)
		wf := sagaWorkflow(lg.add, block.Load, compensating)
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, wf, "saga-r", ""); err != nil {
			t.Fatal(err)
		}
		<-compensating
		block.Store(false)
		env.Restart()
		_, err := durable.Run(ctx, env.Engine, wf, "saga-r", "")
		if want := `durable: cc-saga-restart(saga-r) → step "step-3" failed after 1 attempt: step 3 failed`; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		sagaEffectsOK(t, lg.get())
	})
}

func TestSagaRestartInTheMiddleOfCompensation(t *testing.T) {
	t.Parallel()
	sagaRestart(t, 0)
}

// TestSagaCrashInTheMiddleOfCompensation is the same with a real SIGKILL.
func TestSagaCrashInTheMiddleOfCompensation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "saga.journal"), "LOG": filepath.Join(dir, "effects.log")}
	first := crashtest.Start(t, "TestSagaCrashChild", "first", env)
	first.WaitFor(t, "cc-saga: compensating", time.Minute)
	first.Kill(t)
	second := crashtest.Start(t, "TestSagaCrashChild", "second", env)
	line := second.WaitFor(t, "cc-saga: result:", time.Minute)
	if err := second.Wait(t, time.Minute); err != nil {
		t.Fatalf("second child: %v", err)
	}
	if want := `cc-saga: result: durable: cc-saga-restart(saga-crash) → step "step-3" failed after 1 attempt: step 3 failed`; !strings.Contains(line, want) {
		t.Errorf("second child said %q, want %q", line, want)
	}
	b, err := os.ReadFile(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	sagaEffectsOK(t, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
}

func TestSagaCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role == "" {
		t.Skip("run as a child process by TestSagaCrashInTheMiddleOfCompensation")
	}
	lg, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	effect := func(format string, args ...any) {
		if err := lg.Append(format, args...); err != nil {
			panic(err)
		}
	}
	compensating := make(chan struct{}, 1)
	wf := sagaWorkflow(effect, func() bool { return role == "first" }, compensating)
	e, err := durable.Open(crashtest.Env("JOURNAL"), &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch role {
	case "first":
		if _, err := durable.Start(ctx, e, wf, "saga-crash", ""); err != nil {
			t.Fatal(err)
		}
		<-compensating
		fmt.Println("cc-saga: compensating")
		time.Sleep(time.Hour) // until SIGKILL
	case "second":
		_, err := durable.Run(ctx, e, wf, "saga-crash", "")
		fmt.Printf("cc-saga: result: %v\n", err)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSagaCompensatesOnCancel: a workflow that compensates on ErrCanceled
// runs its undos (on a context cancellation does not reach) and ends
// canceled.
func TestSagaCompensatesOnCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var lg lineLog
		wf := durable.Define("cc-saga-cancel", func(ctx durable.Context, _ string) (string, error) {
			saga := durable.NewSaga(ctx)
			for i := range 2 {
				if _, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(context.Context) (int, error) {
					lg.add("do %d", i)
					return i, nil
				}); err != nil {
					return "", saga.Compensate(err)
				}
				saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
					lg.add("undo %d", i)
					return sctx.Err()
				})
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", saga.Compensate(err)
			}
			return "done", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, wf, "saga-c", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // sleeping
		if err := env.Engine.Cancel(ctx, "saga-c"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("result: %v, want ErrCanceled", err)
		}
		if info, err := env.Engine.Get(ctx, "saga-c"); err != nil || info.Status != durable.StatusCanceled {
			t.Errorf("status %v, %v; want canceled", info.Status, err)
		}
		if got, want := lg.get(), []string{"do 0", "do 1", "undo 1", "undo 0"}; !slices.Equal(got, want) {
			t.Errorf("ran %q, want %q", got, want)
		}
	})
}

// ---------------------------------------------------------------------------
// Eviction: a run cache of one
