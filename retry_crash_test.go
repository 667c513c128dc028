package durable_test

// Retries, backoff and rate limits that survive restarts: real process
// kills during a backoff wait and inside an at-most-once step, and exact
// virtual-time checks of the retry schedule inside testing/synctest
// bubbles.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/retry"
)

// TestRetryCrashChild is the child process of the crash tests; it does
// nothing in a normal test run. Its role says which workflow it runs;
// crashtest.Env("N") is 1 for the first child (the one that is killed).
func TestRetryCrashChild(t *testing.T) {
	if crashtest.Role() == "" {
		t.Skip("run as a child by TestRetryCrash...")
	}
	lg, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	first := crashtest.Env("N") == "1"
	pid := os.Getpid()
	var e *durable.Engine
	opened := make(chan struct{}) // Open resumes the run before it returns e

	var wf *durable.Workflow[string, string]
	switch crashtest.Role() {
	case "backoff":
		wf = durable.Define("rt-crash-backoff", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				info, _ := durable.StepInfoFrom(ctx)
				now := time.Now().UnixNano()
				if info.Attempt == 1 {
					if err := lg.Append("attempt=1 event=failed pid=%d t=%d", pid, now); err != nil {
						return "", err
					}
					fmt.Println("attempt 1 failed")
					return "", errRtFlaky
				}
				// The run's wake time as the journal holds it now: the
				// retry record of attempt 1 set it; a new backoff would
				// have replaced it.
				<-opened
				ri, err := e.Get(ctx, info.RunID)
				if err != nil {
					return "", err
				}
				if err := lg.Append("attempt=%d event=started pid=%d t=%d wake=%d", info.Attempt, pid, now, ri.WakeAt.UnixNano()); err != nil {
					return "", err
				}
				fmt.Printf("attempt %d started\n", info.Attempt)
				return "ok:" + in, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(2 * time.Second)}))
		})
	case "atmostonce":
		wf = durable.Define("rt-crash-amo", func(ctx durable.Context, in string) (string, error) {
			out, err := durable.Step(ctx, "charge", func(ctx context.Context) (string, error) {
				info, _ := durable.StepInfoFrom(ctx)
				if err := lg.Append("inside key=%s attempt=%d pid=%d", info.IdempotencyKey, info.Attempt, pid); err != nil {
					return "", err
				}
				fmt.Println("inside")
				if !first {
					return "executed again", nil // must not happen
				}
				<-ctx.Done() // until the parent kills this process
				return "", ctx.Err()
			}, durable.AtMostOnce())
			if err != nil {
				ie, ok := errors.AsType[*durable.StepInterruptedError](err)
				if !ok || !errors.Is(err, durable.ErrStepInterrupted) {
					return "", err
				}
				return fmt.Sprintf("fallback step=%s key=%s attempt=%d", ie.Step, ie.Key, ie.Attempt), nil
			}
			return out, nil
		})
	default:
		t.Fatalf("unknown role %q", crashtest.Role())
	}

	e, err = durable.Open(crashtest.Env("JOURNAL"), quietConfig(wf))
	if err != nil {
		t.Fatal(err)
	}
	close(opened)
	defer e.Close()
	if crashtest.Role() == "backoff" && first {
		// Say when the failed attempt and its retry time are journaled:
		// the parent kills the process during the wait that follows.
		go func() {
			for {
				ri, err := e.Get(context.Background(), "r1")
				if err == nil && !ri.WakeAt.IsZero() {
					_ = lg.Append("journaled wake=%d", ri.WakeAt.UnixNano())
					fmt.Println("retry journaled")
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	out, err := durable.Run(context.Background(), e, wf, "r1", "in")
	fmt.Printf("run finished: out=%q err=%v\n", out, err)
}

// logLine is one parsed line of a crash test's side-effect log.
type logLine map[string]string

// readLog parses the log at path: lines of space-separated key=value
// fields (the first field may be a bare word).
func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []logLine
	for _, s := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		l := logLine{}
		for i, f := range strings.Fields(s) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				k, v = "word", f
				if i != 0 {
					t.Fatalf("bad log line %q", s)
				}
			}
			l[k] = v
		}
		lines = append(lines, l)
	}
	return lines
}

func (l logLine) int(t *testing.T, key string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(l[key], 10, 64)
	if err != nil {
		t.Fatalf("log line %v: field %s: %v", l, key, err)
	}
	return n
}

// TestRetryCrashDuringBackoff kills a real process (SIGKILL) during the
// 2s backoff wait after a failed attempt, and restarts it on the same
// bbolt journal: the next attempt is attempt 2, it starts when it was due
// (the journaled time, not at once and not a full backoff after the
// restart), and attempt 1 ran exactly once.
func TestRetryCrashDuringBackoff(t *testing.T) {
	t.Parallel()
	const (
		backoffWait = 2 * time.Second
		clockSlack  = 50 * time.Millisecond // wall clocks of two processes
		slack       = 3 * time.Second
	)
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log"), "N": "1"}

	p1 := crashtest.Start(t, "TestRetryCrashChild", "backoff", env)
	p1.WaitFor(t, "attempt 1 failed", 15*time.Second)
	p1.WaitFor(t, "retry journaled", 15*time.Second)
	time.Sleep(300 * time.Millisecond) // well inside the 2s wait
	killed := time.Now()
	p1.Kill(t)
	for _, l := range p1.Lines() {
		if strings.Contains(l, "attempt 2") || strings.Contains(l, "run finished") {
			t.Fatalf("child 1 got past the backoff wait before the kill: %q", l)
		}
	}
	time.Sleep(500 * time.Millisecond)

	env["N"] = "2"
	restarted := time.Now()
	p2 := crashtest.Start(t, "TestRetryCrashChild", "backoff", env)
	line := p2.WaitFor(t, "run finished", 15*time.Second)
	if want := `run finished: out="ok:in" err=<nil>`; line != want {
		t.Errorf("child 2: %q, want %q", line, want)
	}
	if err := p2.Wait(t, 15*time.Second); err != nil {
		t.Errorf("child 2 exited with %v", err)
	}
	restart := restarted.Sub(killed)

	var failed, journaled, started []logLine
	for _, l := range readLog(t, env["LOG"]) {
		switch {
		case l["attempt"] == "1" && l["event"] == "failed":
			failed = append(failed, l)
		case l["word"] == "journaled":
			journaled = append(journaled, l)
		case l["event"] == "started":
			started = append(started, l)
		default:
			t.Errorf("unexpected log line %v", l)
		}
	}
	if len(failed) != 1 || len(journaled) != 1 || len(started) != 1 {
		t.Fatalf("log has %d failed attempts 1, %d journaled retries, %d later attempts; want 1 of each:\n%v %v %v", len(failed), len(journaled), len(started), failed, journaled, started)
	}
	if started[0]["attempt"] != "2" {
		t.Errorf("the attempt after the restart is attempt %s, want 2", started[0]["attempt"])
	}
	if failed[0]["pid"] == started[0]["pid"] {
		t.Errorf("attempts 1 and 2 ran in one process (pid %s), want attempt 2 in the restarted one", failed[0]["pid"])
	}

	t1 := time.Unix(0, failed[0].int(t, "t"))
	wake := time.Unix(0, journaled[0].int(t, "wake"))
	t2 := time.Unix(0, started[0].int(t, "t"))
	wakeSeen := time.Unix(0, started[0].int(t, "wake"))
	// Durable facts: the journaled retry time is a full backoff after the
	// failure, and the restarted process kept it (no new backoff).
	if wake.Before(t1.Add(backoffWait - clockSlack)) {
		t.Errorf("journaled retry time is %v after attempt 1 failed, want at least %v", wake.Sub(t1), backoffWait)
	}
	if !wakeSeen.Equal(wake) {
		t.Errorf("after the restart the run's wake time is %v, want the journaled %v (%v later)", wakeSeen, wake, wakeSeen.Sub(wake))
	}
	if t2.Before(wake.Add(-clockSlack)) {
		t.Errorf("attempt 2 started %v before its journaled time", wake.Sub(t2))
	}
	// Not at once after the restart...
	if t2.Before(t1.Add(backoffWait - clockSlack)) {
		t.Errorf("attempt 2 started %v after attempt 1 failed, want at least %v", t2.Sub(t1), backoffWait)
	}
	// ...and not a full new backoff after it.
	if limit := backoffWait + restart + slack; t2.Sub(t1) > limit {
		t.Errorf("attempt 2 started %v after attempt 1 failed, want at most %v (backoff %v + restart %v + slack %v)", t2.Sub(t1), limit, backoffWait, restart, slack)
	}
}

// TestRetryAtMostOnceCrash kills a real process inside an at-most-once
// step: on resume the step is not run again, it returns a
// *StepInterruptedError (matching ErrStepInterrupted) with the key the
// step saw, and the workflow handles it.
func TestRetryAtMostOnceCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	env := map[string]string{"JOURNAL": path, "LOG": filepath.Join(dir, "effects.log"), "N": "1"}

	p1 := crashtest.Start(t, "TestRetryCrashChild", "atmostonce", env)
	p1.WaitFor(t, "inside", 15*time.Second)
	p1.Kill(t)

	env["N"] = "2"
	p2 := crashtest.Start(t, "TestRetryCrashChild", "atmostonce", env)
	line := p2.WaitFor(t, "run finished", 15*time.Second)
	if err := p2.Wait(t, 15*time.Second); err != nil {
		t.Errorf("child 2 exited with %v", err)
	}
	log := readLog(t, env["LOG"])
	if len(log) != 1 || log[0]["word"] != "inside" {
		t.Fatalf("log %v, want the step to have run once", log)
	}
	key := log[0]["key"]
	if key != "r1/0" {
		t.Errorf("idempotency key %q, want %q", key, "r1/0")
	}
	if want := fmt.Sprintf(`run finished: out="fallback step=charge key=%s attempt=1" err=<nil>`, key); line != want {
		t.Errorf("child 2: %q, want %q", line, want)
	}

	// The outcome is journaled: the run completed with the fallback.
	e, err := durable.Open(path, quietConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info, err := e.Get(t.Context(), "r1")
	if err != nil || info.Status != durable.StatusCompleted {
		t.Errorf("Get(r1) = %v, %v; want completed", info.Status, err)
	}
}

// ---------------------------------------------------------------------------
// Restarts in memory, in virtual time.

// TestRetryAtMostOnceRestart: an at-most-once step interrupted by
// Engine.Close (env.Restart) is not run again either; a plain failed
// attempt of such a step is retried, also across a restart in its backoff
// wait.
func TestRetryAtMostOnceRestart(t *testing.T) {
	t.Parallel()
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			a := newAttempts()
			wf := durable.Define("rt-amo", func(ctx durable.Context, in string) (string, error) {
				out, err := durable.Step(ctx, "charge", func(ctx context.Context) (string, error) {
					if a.record(ctx) > 1 {
						return "executed again", nil // must not happen
					}
					<-ctx.Done() // until Close cancels it
					return "", ctx.Err()
				}, durable.AtMostOnce())
				if ie, ok := errors.AsType[*durable.StepInterruptedError](err); ok && errors.Is(err, durable.ErrStepInterrupted) {
					return fmt.Sprintf("fallback step=%s key=%s attempt=%d", ie.Step, ie.Key, ie.Attempt), nil
				}
				return out, err
			})
			env := durabletest.New(t, quietConfig(wf))
			h, err := durable.Start(t.Context(), env.Engine, wf, "amo-1", "")
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // blocked inside the step
			env.Restart()
			if _, err := h.Result(t.Context()); !errors.Is(err, durable.ErrClosed) {
				t.Errorf("old handle: %v, want ErrClosed", err)
			}
			out, err := durable.Run(t.Context(), env.Engine, wf, "amo-1", "")
			infos := a.steps()
			if len(infos) != 1 {
				t.Fatalf("the step ran %d times, want once", len(infos))
			}
			if want := "fallback step=charge key=" + infos[0].IdempotencyKey + " attempt=1"; out != want || err != nil {
				t.Errorf("Run = %q, %v; want %q", out, err, want)
			}
		})
	})
	t.Run("failed attempt is retried", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			a := newAttempts()
			wf := durable.Define("rt-amo-retry", func(ctx durable.Context, in string) (string, error) {
				return durable.Step(ctx, "charge", func(ctx context.Context) (string, error) {
					if a.record(ctx) == 1 {
						return "", errRtFlaky
					}
					return "charged", nil
				}, durable.AtMostOnce(), durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(2 * time.Second)}))
			})
			env := durabletest.New(t, quietConfig(wf))
			if _, err := durable.Start(t.Context(), env.Engine, wf, "amo-2", ""); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // in the backoff wait
			synctest.Wait()
			env.Restart()
			out, err := durable.Run(t.Context(), env.Engine, wf, "amo-2", "")
			if out != "charged" || err != nil {
				t.Errorf("Run = %q, %v; want charged", out, err)
			}
			wantTimes(t, a, 0, 2*time.Second)
		})
	})
}
