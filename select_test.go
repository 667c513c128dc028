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
	"path/filepath"
	"strconv"
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

// selectWorkflow races a receive case, future B, future A and a timer.
// The first time, A finishes and B blocks until the engine stops. After a
// restart B finishes at once and a message waits on "sel", so a select
// evaluated again would pick the receive case (index 0); the journaled
// select must still say A (index 2). The step "report" records the winner.
func selectWorkflow(aRan, bRan func(), bBlocks func() bool, report func(won int), reported chan<- int) *durable.Workflow[string, string] {
	return durable.Define("cc-select", func(ctx durable.Context, _ string) (string, error) {
		fa := durable.Go(ctx, "a", func(context.Context) (string, error) {
			aRan()
			return "A", nil
		})
		fb := durable.Go(ctx, "b", func(sctx context.Context) (string, error) {
			bRan()
			if bBlocks() {
				<-sctx.Done()
				return "", sctx.Err()
			}
			return "B", nil
		})
		sel := durable.OnReceive[string]("sel")
		won, err := durable.AwaitAny(ctx, sel, fb, fa, durable.NewTimer(ctx, time.Hour))
		if err != nil {
			return "", err
		}
		if _, err := durable.Step(ctx, "report", func(context.Context) (int, error) {
			report(won)
			return won, nil
		}); err != nil {
			return "", err
		}
		select { // test hook: the winner is recorded
		case reported <- won:
		default:
		}
		if _, err := durable.Receive[string](ctx, "continue"); err != nil {
			return "", err
		}
		b, err := fb.Get(ctx)
		if err != nil {
			return "", err
		}
		msg, err := durable.Receive[string](ctx, "sel") // the select did not take it
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("won=%d b=%s sel=%s", won, b, msg), nil
	})
}

func selectRestart(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var aRuns, bRuns atomic.Int32
		var phase atomic.Int32
		var reports tally
		reported := make(chan int, 2)
		bStarted := make(chan struct{}, 2)
		wf := selectWorkflow(
			func() { aRuns.Add(1) },
			func() { bRuns.Add(1); bStarted <- struct{}{} },
			func() bool { return phase.Load() == 1 },
			func(won int) { reports.add(strconv.Itoa(won)) },
			reported)
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		phase.Store(1)
		if _, err := durable.Start(ctx, env.Engine, wf, "sel-1", ""); err != nil {
			t.Fatal(err)
		}
		if won := <-reported; won != 2 {
			t.Fatalf("first select won by %d, want 2 (future A)", won)
		}
		<-bStarted // B is executing: the restart interrupts it
		if err := durable.Send(ctx, env.Engine, "sel-1", "sel", "hello"); err != nil {
			t.Fatal(err)
		}
		phase.Store(2)
		env.Restart()
		if err := durable.Send(ctx, env.Engine, "sel-1", "continue", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, wf, "sel-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "won=2 b=B sel=hello"; out != want {
			t.Errorf("result %q, want %q", out, want)
		}
		if a, b := aRuns.Load(), bRuns.Load(); a != 1 || b != 2 {
			t.Errorf("A ran %d times (want 1), B ran %d times (want 2: interrupted, then again)", a, b)
		}
		if got := reports.snapshot(); len(got) != 1 || got["2"] != 1 {
			t.Errorf("report step ran %v, want once with winner 2", got)
		}
	})
}

func TestSelectWinnerIsJournaledAcrossRestart(t *testing.T) {
	t.Parallel()
	selectRestart(t, 0)
}

// TestSelectCrashWinnerIsJournaled is the same with a real SIGKILL: the
// first child process sees A win and is killed; in the second, B would
// win a fresh select, but the run reports A.
func TestSelectCrashWinnerIsJournaled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "select.journal"), "LOG": filepath.Join(dir, "effects.log")}
	first := crashtest.Start(t, "TestSelectCrashChild", "first", env)
	first.WaitFor(t, "cc-select: ready", time.Minute)
	first.Kill(t)
	second := crashtest.Start(t, "TestSelectCrashChild", "second", env)
	line := second.WaitFor(t, "cc-select: result:", time.Minute)
	if err := second.Wait(t, time.Minute); err != nil {
		t.Fatalf("second child: %v", err)
	}
	if want := "cc-select: result: won=2 b=B sel=hello"; !strings.Contains(line, want) {
		t.Errorf("second child said %q, want %q", line, want)
	}
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a ran": 1, "b ran": 2, "report 2": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("effects %v, want %v", counts, want)
	}
}

func TestSelectCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role == "" {
		t.Skip("run as a child process by TestSelectCrashWinnerIsJournaled")
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
	reported := make(chan int, 1)
	bStarted := make(chan struct{}, 1)
	wf := selectWorkflow(
		func() { effect("a ran") },
		func() { effect("b ran"); bStarted <- struct{}{} },
		func() bool { return role == "first" },
		func(won int) { effect("report %d", won) },
		reported)
	e, err := durable.Open(crashtest.Env("JOURNAL"), &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch role {
	case "first":
		if _, err := durable.Start(ctx, e, wf, "sel-crash", ""); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cc-select: won %d\n", <-reported)
		<-bStarted // B is executing: the kill interrupts it
		if err := durable.Send(ctx, e, "sel-crash", "sel", "hello"); err != nil {
			t.Fatal(err)
		}
		fmt.Println("cc-select: ready")
		time.Sleep(time.Hour) // until SIGKILL
	case "second":
		if err := durable.Send(ctx, e, "sel-crash", "continue", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, e, wf, "sel-crash", "")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cc-select: result: %s\n", out)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSelectAwaitAllFirstErrorInArgumentOrder: AwaitAll waits for every
// item and returns the first error in argument order, not the first to
// happen.
func TestSelectAwaitAllFirstErrorInArgumentOrder(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		after := func(d time.Duration, err error) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				time.Sleep(d)
				return int(d / time.Second), err
			}
		}
		once := durable.WithRetry(retry.Policy{MaxAttempts: 1})
		wf := durable.Define("cc-awaitall", func(ctx durable.Context, _ string) (string, error) {
			ok := durable.Go(ctx, "ok", after(3*time.Second, nil), once)
			late := durable.Go(ctx, "late-fail", after(2*time.Second, errors.New("first in argument order")), once)
			early := durable.Go(ctx, "early-fail", after(time.Second, errors.New("first to fail")), once)
			if err := durable.AwaitAll(ctx, ok); err != nil {
				return "", fmt.Errorf("AwaitAll of a success: %w", err)
			}
			return "", durable.AwaitAll(ctx, ok, late, early)
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		start := time.Now()
		_, err := durable.Run(t.Context(), env.Engine, wf, "aa-1", "")
		if elapsed := time.Since(start); elapsed != 3*time.Second {
			t.Errorf("AwaitAll returned after %v (virtual), want 3s: it waits for every item", elapsed)
		}
		var se *durable.StepError
		if !errors.As(err, &se) || se.Step != "late-fail" {
			t.Fatalf("error %v (%T), want the StepError of late-fail", err, err)
		}
		if want := `durable: cc-awaitall(aa-1) → step "late-fail" failed after 1 attempt: first in argument order`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
}

// selectReceiveOnce: a winning receive case takes its message exactly
// once; the next select gets the next message, across a restart too, and a
// select with an empty inbox is won by its timer.
func selectReceiveOnce(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("cc-select-receive", func(ctx durable.Context, _ string) (string, error) {
			inbox := durable.OnReceive[string]("inbox")
			var got []string
			for round := range 3 {
				won, err := durable.AwaitAny(ctx, inbox, durable.NewTimer(ctx, time.Minute))
				if err != nil {
					return "", err
				}
				if won == 0 {
					v, _ := inbox.Value()
					got = append(got, v)
				} else {
					got = append(got, "timeout")
				}
				if round == 0 {
					if _, err := durable.Receive[string](ctx, "next"); err != nil {
						return "", err
					}
				}
			}
			return strings.Join(got, ","), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, wf, "recv-1", ""); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"m1", "m2"} {
			if err := durable.Send(ctx, env.Engine, "recv-1", "inbox", m); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // the first select took m1; the run waits on "next"
		msgs, err := env.Store.Messages(ctx, "recv-1", "inbox", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "m2") {
			t.Fatalf("inbox after the first select holds %d messages (%+v), want m2 only", len(msgs), msgs)
		}
		env.Restart()
		if err := durable.Send(ctx, env.Engine, "recv-1", "next", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, wf, "recv-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "m1,m2,timeout"; out != want {
			t.Errorf("result %q, want %q", out, want)
		}
	})
}

func TestSelectReceiveCaseTakesMessageOnce(t *testing.T) {
	t.Parallel()
	selectReceiveOnce(t, 0)
}

// ---------------------------------------------------------------------------
// Child workflows
