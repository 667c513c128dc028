package durable

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable/backoff"

	"github.com/durable-go/durable/retry"

	"github.com/durable-go/durable/journal"
)

// White-box tests of several engines on one store (journal.Coordinator)
// and of recovery loading only ready runs. They use the engine's test
// hooks (killForTest, pauseForTest) and its load counter.

var millionWaiting = flag.Bool("durable.million", false, "TestRecoveryLoadsOnlyReadyRuns with 1,000,000 waiting runs instead of 10,000")

func coQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// ledger records which engine executed which step of which run, and fails
// the test if one run executes in two engines at once.
type ledger struct {
	t    *testing.T
	mu   sync.Mutex
	busy map[string]string // run -> engine executing a step of it
	ran  map[string][]string
}

func newLedger(t *testing.T) *ledger {
	return &ledger{t: t, busy: map[string]string{}, ran: map[string][]string{}}
}

func (l *ledger) enter(run, engine string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o, ok := l.busy[run]; ok {
		l.t.Errorf("run %s executes in engine %s and in %s at once", run, o, engine)
	}
	l.busy[run] = engine
	l.ran[run] = append(l.ran[run], engine)
}

func (l *ledger) leave(run string) {
	l.mu.Lock()
	delete(l.busy, run)
	l.mu.Unlock()
}

func (l *ledger) engines(run string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ran[run]...)
}

func newShared(t *testing.T, store journal.Store, name string, cfg Config) *Engine {
	t.Helper()
	cfg.Logger = coQuiet()
	e, err := New(store, &cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	names.Store(e, name)
	t.Cleanup(func() { e.Close() })
	return e
}

var names sync.Map // *Engine -> name

// nameOf is the name of the engine that executes the run of ctx.
func nameOf(ctx Context) string {
	n, _ := names.Load(ctx.executor().e)
	s, _ := n.(string)
	return s
}

// TestSharedWorkSpreads: a fan-out of children started on one engine runs
// on all three engines of one Memory store, each run in one engine at a
// time, every step recorded once.
func TestSharedWorkSpreads(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		led := newLedger(t)
		var execs atomic.Int64
		child := Define("co-child", func(ctx Context, i int) (int, error) {
			return Step(ctx, "work", func(sctx context.Context) (int, error) {
				led.enter(ctx.RunID(), nameOf(ctx))
				defer led.leave(ctx.RunID())
				execs.Add(1)
				time.Sleep(time.Second) // work that takes (virtual) time
				return i * 2, nil
			})
		})
		parent := Define("co-parent", func(ctx Context, n int) (int, error) {
			var fs []*Future[int]
			for i := range n {
				fs = append(fs, StartChild(ctx, child, "", i))
			}
			sum := 0
			for _, f := range fs {
				v, err := f.Get(ctx)
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		})
		cfg := Config{Workflows: []Definition{parent, child}, MaxRuns: 4}
		engines := []*Engine{newShared(t, store, "e1", cfg), newShared(t, store, "e2", cfg), newShared(t, store, "e3", cfg)}
		got, err := Run(t.Context(), engines[0], parent, "fan", 30)
		if want := 2 * (29 * 30 / 2); err != nil || got != want {
			t.Fatalf("Run = %d, %v; want %d", got, err, want)
		}
		if n := execs.Load(); n != 30 {
			t.Errorf("children's steps executed %d times, want 30", n)
		}
		used := map[string]int{}
		for i := range 30 {
			for _, e := range led.engines(fmt.Sprintf("fan/%d", i)) {
				used[e]++
			}
		}
		if len(used) != 3 {
			t.Errorf("children ran on engines %v, want all three", used)
		}
	})
}

// TestSharedEngineDies: an engine dies (no heartbeat, no release); its
// run, in the middle of a step, is claimed by another engine after the
// lease timeout plus a poll, replays the recorded step and executes the
// interrupted one again.
func TestSharedEngineDies(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		store.SetLease(journal.Lease{Timeout: 5 * time.Second, Poll: time.Second})
		led := newLedger(t)
		var first, second atomic.Int64
		started := make(chan struct{}, 1)
		wf := Define("co-die", func(ctx Context, _ int) (string, error) {
			if _, err := Step(ctx, "first", func(context.Context) (int, error) { first.Add(1); return 1, nil }); err != nil {
				return "", err
			}
			return Step(ctx, "second", func(sctx context.Context) (string, error) {
				led.enter(ctx.RunID(), nameOf(ctx))
				defer led.leave(ctx.RunID())
				if second.Add(1) == 1 {
					started <- struct{}{}
					<-sctx.Done() // the first engine dies in here
					return "", sctx.Err()
				}
				return nameOf(ctx), nil
			})
		})
		cfg := Config{Workflows: []Definition{wf}}
		e1 := newShared(t, store, "e1", cfg)
		if _, err := Start(t.Context(), e1, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		<-started
		e2 := newShared(t, store, "e2", cfg)
		client := newShared(t, store, "client", Config{})
		died := time.Now()
		e1.killForTest()

		var out string
		for {
			info, err := client.Get(t.Context(), "r")
			if err != nil {
				t.Fatal(err)
			}
			if info.Status == StatusCompleted {
				break
			}
			if time.Since(died) > time.Minute {
				t.Fatalf("run not finished a minute after its engine died: %+v", info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(died)
		if took < 5*time.Second || took > 5*time.Second+2*time.Second {
			t.Errorf("another engine finished the run %v after the first died; want the lease (5s) plus about a poll (1s)", took)
		}
		out, err := Run(t.Context(), e2, wf, "r", 0)
		if err != nil || out != "e2" {
			t.Errorf("Result = %q, %v; want the step's second execution, in e2", out, err)
		}
		if first.Load() != 1 || second.Load() != 2 {
			t.Errorf("executions: first %d (want 1), second %d (want 2: interrupted, then again)", first.Load(), second.Load())
		}
	})
}

// TestSharedPausedEngineLosesRun: an engine stopped past its lease (as by
// SIGSTOP) while its run waits for a message; another engine takes the
// run over and finishes it; when the first resumes, its commit is fenced
// out: it records nothing and drops the run.
func TestSharedPausedEngineLosesRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		store.SetLease(journal.Lease{Timeout: 5 * time.Second, Poll: time.Second})
		var after atomic.Int64
		wf := Define("co-pause", func(ctx Context, _ int) (string, error) {
			msg, err := Receive[string](ctx, "go")
			if err != nil {
				return "", err
			}
			return Step(ctx, "after", func(sctx context.Context) (string, error) {
				after.Add(1)
				return msg + " in " + nameOf(ctx), nil
			})
		})
		cfg := Config{Workflows: []Definition{wf}}
		e1 := newShared(t, store, "e1", cfg)
		if _, err := Start(t.Context(), e1, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e1.pauseForTest(true)
		e2 := newShared(t, store, "e2", cfg)
		time.Sleep(10 * time.Second) // past e1's lease
		if err := Send(t.Context(), e2, "r", "go", "hi"); err != nil {
			t.Fatal(err)
		}
		out, err := Run(t.Context(), e2, wf, "r", 0)
		if err != nil || out != "hi in e2" {
			t.Fatalf("Run on e2 = %q, %v; want %q", out, err, "hi in e2")
		}
		recs, _ := store.Records(t.Context(), "r")
		e1.pauseForTest(false) // wakes its run: it tries to go on
		synctest.Wait()
		if n := after.Load(); n != 1 {
			t.Errorf("step after executed %d times, want 1 (e1 must not run it)", n)
		}
		recs2, _ := store.Records(t.Context(), "r")
		if len(recs2) != len(recs) {
			t.Errorf("the paused engine recorded %d records after it resumed, want none", len(recs2)-len(recs))
		}
		if s := e1.liveRunOf("r"); s != nil {
			t.Errorf("e1 still holds run r after losing it")
		}
		if info, _ := e2.Get(t.Context(), "r"); info.Status != StatusCompleted {
			t.Errorf("run r: %v, want completed", info.Status)
		}
	})
}

// TestSharedPausedEngineStartsNoStep: an engine stopped past its lease
// (SIGSTOP) with a step's retry due wakes up after another engine took
// the run; it must not start the attempt the other engine runs (the fence
// would only keep its outcome out of the journal: the effect would
// happen twice, at once).
func TestSharedPausedEngineStartsNoStep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		store.SetLease(journal.Lease{Timeout: 5 * time.Second, Poll: time.Second})
		var mu sync.Mutex
		attempts := map[string][]int{} // engine -> attempts it executed
		wf := Define("co-pause-step", func(ctx Context, _ int) (string, error) {
			return Step(ctx, "call", func(sctx context.Context) (string, error) {
				info, _ := StepInfoFrom(sctx)
				mu.Lock()
				attempts[nameOf(ctx)] = append(attempts[nameOf(ctx)], info.Attempt)
				mu.Unlock()
				if info.Attempt == 1 {
					return "", errors.New("busy")
				}
				return nameOf(ctx), nil
			}, WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Minute)}))
		})
		cfg := Config{Workflows: []Definition{wf}}
		e1 := newShared(t, store, "e1", cfg)
		if _, err := Start(t.Context(), e1, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // attempt 1 failed on e1; attempt 2 is due in a minute
		e1.pauseForTest(true)
		e2 := newShared(t, store, "e2", cfg)
		out, err := Run(t.Context(), e2, wf, "r", 0) // e2 claims r after e1's lease and runs attempt 2
		if err != nil || out != "e2" {
			t.Fatalf("Run on e2 = %q, %v; want e2", out, err)
		}
		// e1's timer of attempt 2 fell due while it was stopped: it
		// wakes up with the step due and the run lost.
		e1.pauseForTest(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if got := attempts["e1"]; !slices.Equal(got, []int{1}) {
			t.Errorf("e1 executed attempts %v, want [1] (attempt 2 belongs to e2, which took the run)", got)
		}
		if got := attempts["e2"]; !slices.Equal(got, []int{2}) {
			t.Errorf("e2 executed attempts %v, want [2]", got)
		}
		if e1.liveRunOf("r") != nil {
			t.Errorf("e1 still holds run r after losing it")
		}
	})
}

// TestSharedTimerOfDeadOwner: a run sleeping in an engine that dies wakes
// on another engine at its time.
func TestSharedTimerOfDeadOwner(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		store.SetLease(journal.Lease{Timeout: 5 * time.Second, Poll: time.Second})
		wf := Define("co-sleep", func(ctx Context, _ int) (string, error) {
			if err := Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			return Step(ctx, "where", func(sctx context.Context) (string, error) { return nameOf(ctx), nil })
		})
		cfg := Config{Workflows: []Definition{wf}}
		e1 := newShared(t, store, "e1", cfg)
		start := time.Now()
		if _, err := Start(t.Context(), e1, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e1.killForTest()
		e2 := newShared(t, store, "e2", cfg)
		out, err := Run(t.Context(), e2, wf, "r", 0)
		if err != nil || out != "e2" {
			t.Fatalf("Run = %q, %v; want e2", out, err)
		}
		if took := time.Since(start); took < time.Hour || took > time.Hour+2*time.Second {
			t.Errorf("the sleep ended after %v, want an hour", took)
		}
	})
}

// TestSharedClientReachesAnyRun: an engine with no workflows sends,
// cancels and inspects runs that others execute.
func TestSharedClientReachesAnyRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := journal.NewMemory()
		wf := Define("co-client", func(ctx Context, _ int) (string, error) {
			return Receive[string](ctx, "in")
		})
		worker := newShared(t, store, "worker", Config{Workflows: []Definition{wf}})
		client := newShared(t, store, "client", Config{})
		for _, id := range []string{"a", "b"} {
			if _, err := Start(t.Context(), worker, wf, id, 0); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if info, err := client.Get(t.Context(), "a"); err != nil || info.Waiting == "" || !strings.Contains(info.Waiting, "not registered") {
			t.Errorf("client Get = %+v, %v; want running, Waiting saying the workflow is not registered here", info, err)
		}
		if err := Send(t.Context(), client, "a", "in", "hello"); err != nil {
			t.Fatal(err)
		}
		if err := client.Cancel(t.Context(), "b"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if info, _ := client.Get(t.Context(), "a"); info.Status != StatusCompleted {
			t.Errorf("run a: %v, want completed", info.Status)
		}
		if info, _ := client.Get(t.Context(), "b"); info.Status != StatusCanceled {
			t.Errorf("run b: %v, want canceled", info.Status)
		}
		if out, err := Run(t.Context(), worker, wf, "a", 0); err != nil || out != "hello" {
			t.Errorf("run a = %q, %v", out, err)
		}
	})
}

// TestRecoveryLoadsOnlyReadyRuns: an engine that opens a journal with many
// waiting runs (idle: for a message, or a timer later) loads none of them;
// a message loads its run, and a timer its run, when due. On both stores.
func TestRecoveryLoadsOnlyReadyRuns(t *testing.T) {
	t.Parallel()
	n := 10_000
	if *millionWaiting {
		n = 1_000_000
	}
	wf := Define("co-wait", func(ctx Context, _ int) (string, error) {
		return Receive[string](ctx, "in")
	})
	for _, kind := range []string{"memory", "bolt"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var store journal.Store
				if kind == "memory" {
					store = journal.NewMemory()
				} else {
					b, err := journal.OpenBolt(filepath.Join(t.TempDir(), "j.db"))
					if err != nil {
						t.Fatal(err)
					}
					defer b.Close()
					store = b
				}
				cfg := Config{Workflows: []Definition{wf}, Logger: coQuiet()}
				// One run made by the engine, so its idle mark is the
				// engine's own; the rest written straight to the store.
				e, err := New(store, &cfg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Start(t.Context(), e, wf, "made", 0); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				e.Close()
				input, _ := encodePayload(0, 1<<20)
				later := time.Now().Add(time.Hour)
				for i := 0; i < n; i += 5000 {
					b := &journal.Batch{}
					for j := i; j < min(i+5000, n); j++ {
						id := fmt.Sprintf("w%07d", j)
						b.Create = append(b.Create, journal.Run{ID: id, Workflow: wf.Name(), Status: journal.StatusRunning, Input: input})
						u := journal.Update{RunID: id, Idle: true}
						if j == 0 {
							u.SetWake, u.Wake = true, later // this one also has a timer
						}
						b.Update = append(b.Update, u)
					}
					if err := store.Commit(t.Context(), b); err != nil {
						t.Fatal(err)
					}
				}

				e, err = New(store, &cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				synctest.Wait()
				if got := e.loads.Load(); got != 0 {
					t.Fatalf("Open loaded %d of %d waiting runs, want none", got, n+1)
				}
				if err := Send(t.Context(), e, "w0000007", "in", "x"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if info, _ := e.Get(t.Context(), "w0000007"); info.Status != StatusCompleted {
					t.Errorf("run with a message: %v, want completed", info.Status)
				}
				if got := e.loads.Load(); got != 1 {
					t.Errorf("a message loaded %d runs, want 1", got)
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				if got := e.loads.Load(); got != 2 {
					t.Errorf("after the timer of w0000000 fell due, %d runs were loaded, want 2", got)
				}
				if info, _ := e.Get(t.Context(), "w0000000"); info.Status != StatusRunning || info.Waiting != "a message" {
					t.Errorf("run after its timer: %+v, want running, waiting for a message", info)
				}
			})
		})
	}
}

var _ = errors.Is
