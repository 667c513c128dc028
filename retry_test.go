package durable_test

// Retries, backoff and rate limits that survive restarts: real process
// kills during a backoff wait and inside an at-most-once step, and exact
// virtual-time checks of the retry schedule inside testing/synctest
// bubbles.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/retry"
)

var errRtFlaky = errors.New("flaky")

// rtConfig returns a quiet config running wfs.
func rtConfig(wfs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: wfs, Logger: slog.New(slog.DiscardHandler)}
}

// rtAttempts records the step attempts of one test: when each started
// (time since the test began: virtual inside a bubble) and its StepInfo.
type rtAttempts struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	infos []durable.StepInfo
}

func rtNewAttempts() *rtAttempts { return &rtAttempts{start: time.Now()} }

// record notes an attempt and returns how many there were, this one
// included.
func (a *rtAttempts) record(ctx context.Context) int {
	info, _ := durable.StepInfoFrom(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = append(a.at, time.Since(a.start))
	a.infos = append(a.infos, info)
	return len(a.at)
}

func (a *rtAttempts) times() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at)
}

func (a *rtAttempts) steps() []durable.StepInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.infos)
}

// rtWantTimes checks the attempt times, exactly (virtual time).
func rtWantTimes(t *testing.T, a *rtAttempts, want ...time.Duration) {
	t.Helper()
	if got := a.times(); !slices.Equal(got, want) {
		t.Errorf("attempts started at %v, want %v", got, want)
	}
}

// rtStepError returns the *durable.StepError in err's chain, failing the
// test if there is none.
func rtStepError(t *testing.T, err error) *durable.StepError {
	t.Helper()
	se, ok := errors.AsType[*durable.StepError](err)
	if !ok {
		t.Fatalf("error %v (%T) has no *durable.StepError in its chain", err, err)
	}
	return se
}

// ---------------------------------------------------------------------------
// Real crashes: the test binary runs TestRetryCrashChild as a child process.

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

	e, err = durable.Open(crashtest.Env("JOURNAL"), rtConfig(wf))
	if err != nil {
		t.Fatal(err)
	}
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

// rtLogLine is one parsed line of a crash test's side-effect log.
type rtLogLine map[string]string

// rtReadLog parses the log at path: lines of space-separated key=value
// fields (the first field may be a bare word).
func rtReadLog(t *testing.T, path string) []rtLogLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []rtLogLine
	for _, s := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		l := rtLogLine{}
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

func (l rtLogLine) int(t *testing.T, key string) int64 {
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

	var failed, journaled, started []rtLogLine
	for _, l := range rtReadLog(t, env["LOG"]) {
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
	log := rtReadLog(t, env["LOG"])
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
	e, err := durable.Open(path, rtConfig())
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

// TestRetryRestartDuringBackoff restarts the engine during a 2s backoff
// wait: the next attempt starts exactly when it was due, not a full
// backoff after the restart; for Step and for Go.
func TestRetryRestartDuringBackoff(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"Step", "Go"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := rtNewAttempts()
				fn := func(ctx context.Context) (string, error) {
					if a.record(ctx) == 1 {
						return "", errRtFlaky
					}
					return "ok", nil
				}
				opt := durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(2 * time.Second)})
				wf := durable.Define("rt-restart-backoff", func(ctx durable.Context, in string) (string, error) {
					if mode == "Go" {
						return durable.Go(ctx, "call", fn, opt).Get(ctx)
					}
					return durable.Step(ctx, "call", fn, opt)
				})
				env := durabletest.New(t, rtConfig(wf))
				h, err := durable.Start(t.Context(), env.Engine, wf, "rb-1", "x")
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(1500 * time.Millisecond)
				synctest.Wait()
				info, err := env.Engine.Get(t.Context(), "rb-1")
				if err != nil || !info.WakeAt.Equal(a.start.Add(2*time.Second)) {
					t.Errorf("before the restart: WakeAt %v (err %v), want 2s after the start", info.WakeAt.Sub(a.start), err)
				}

				env.Restart()
				if _, err := h.Result(t.Context()); !errors.Is(err, durable.ErrClosed) {
					t.Errorf("old handle's Result = %v, want ErrClosed", err)
				}
				out, err := durable.Run(t.Context(), env.Engine, wf, "rb-1", "x")
				if out != "ok" || err != nil {
					t.Fatalf("Run = %q, %v; want ok", out, err)
				}
				rtWantTimes(t, a, 0, 2*time.Second)
				if got := time.Since(a.start); got != 2*time.Second {
					t.Errorf("run finished at %v, want 2s", got)
				}
			})
		})
	}
}

// rtPanickyStep is a step function that panics.
func rtPanickyStep(context.Context) (string, error) {
	panic("kaboom")
}

// TestRetryPanicIsFailedAttempt: a panicking step is a failed attempt with
// its stack; the final error is a StepError wrapping a PanicError, also
// after a restart.
func TestRetryPanicIsFailedAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := rtNewAttempts()
		wf := durable.Define("rt-panic", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "explode", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return rtPanickyStep(ctx)
			}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
		})
		env := durabletest.New(t, rtConfig(wf))
		check := func(err error) {
			t.Helper()
			const want = `durable: rt-panic(p-1) → step "explode" failed after 2 attempts: durable: panic: kaboom`
			if err == nil || err.Error() != want {
				t.Fatalf("error %v, want %q", err, want)
			}
			if se := rtStepError(t, err); se.Attempts != 2 || se.Step != "explode" {
				t.Errorf("StepError %+v, want 2 attempts of step explode", se)
			}
			pe, ok := errors.AsType[*durable.PanicError](err)
			if !ok {
				t.Fatalf("error %v has no *durable.PanicError in its chain", err)
			}
			if pe.Value != "kaboom" {
				t.Errorf("PanicError.Value = %q, want kaboom", pe.Value)
			}
			if pe.Stack == "" || !strings.Contains(pe.Stack, "rtPanickyStep") {
				t.Errorf("PanicError.Stack does not name the panicking function:\n%s", pe.Stack)
			}
		}
		_, err := durable.Run(t.Context(), env.Engine, wf, "p-1", "x")
		check(err)
		rtWantTimes(t, a, 0, time.Second)
		if info, _ := env.Engine.Get(t.Context(), "p-1"); info.Status != durable.StatusFailed {
			t.Errorf("status %v, want failed", info.Status)
		}
		env.Restart()
		_, err = durable.Run(t.Context(), env.Engine, wf, "p-1", "x")
		check(err)
		if n := len(a.times()); n != 2 {
			t.Errorf("%d attempts, want 2", n)
		}
	})
}

// TestRetryPermanentStopsAtOnce: a retry.Permanent error, even wrapped,
// ends the step after one attempt.
func TestRetryPermanentStopsAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"bare", retry.Permanent(errors.New("invalid account")), "invalid account"},
		{"wrapped", fmt.Errorf("crm: %w", retry.Permanent(errors.New("invalid account"))), "crm: invalid account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := rtNewAttempts()
				wf := durable.Define("rt-permanent", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
						a.record(ctx)
						return "", tt.err
					}, durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Second)}))
				})
				env := durabletest.New(t, rtConfig(wf))
				_, err := durable.Run(t.Context(), env.Engine, wf, "perm-1", "x")
				want := `durable: rt-permanent(perm-1) → step "call" failed after 1 attempt: ` + tt.want
				if err == nil || err.Error() != want {
					t.Fatalf("Run error %v, want %q", err, want)
				}
				if se := rtStepError(t, err); se.Attempts != 1 {
					t.Errorf("StepError.Attempts = %d, want 1", se.Attempts)
				}
				if re, ok := errors.AsType[*durable.RecordedError](err); !ok || !re.Permanent {
					t.Errorf("recorded cause %#v, want a RecordedError marked Permanent", re)
				}
				rtWantTimes(t, a, 0)
				if got := time.Since(a.start); got != 0 {
					t.Errorf("run finished after %v, want at once", got)
				}
			})
		})
	}
}

// TestRetryAfterHint: retry.After makes the next attempt wait the larger
// of the backoff and the hint.
func TestRetryAfterHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		hints []time.Duration // per failing attempt; 0: a plain error
		want  []time.Duration // attempt start times
	}{
		{"hint beats backoff", []time.Duration{10 * time.Second, 0}, []time.Duration{0, 10 * time.Second, 11 * time.Second}},
		{"backoff beats hint", []time.Duration{100 * time.Millisecond, 0}, []time.Duration{0, time.Second, 2 * time.Second}},
		{"every attempt", []time.Duration{10 * time.Second, 10 * time.Second}, []time.Duration{0, 10 * time.Second, 20 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := rtNewAttempts()
				wf := durable.Define("rt-after", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
						n := a.record(ctx)
						if n > len(tt.hints) {
							return "ok", nil
						}
						err := fmt.Errorf("429 Too Many Requests (attempt %d)", n)
						if h := tt.hints[n-1]; h > 0 {
							return "", retry.After(err, h)
						}
						return "", err
					}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second)}))
				})
				env := durabletest.New(t, rtConfig(wf))
				out, err := durable.Run(t.Context(), env.Engine, wf, "after-1", "x")
				if out != "ok" || err != nil {
					t.Fatalf("Run = %q, %v; want ok", out, err)
				}
				rtWantTimes(t, a, tt.want...)
			})
		})
	}
}

// TestRetryTimeoutBoundsEachAttempt: WithTimeout (or Policy.Timeout) gives
// each attempt a deadline; an attempt that runs out fails with
// context.DeadlineExceeded and is retried.
func TestRetryTimeoutBoundsEachAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      []durable.StepOption
		succeedAt int             // the attempt that returns at once with "ok"; 0: none
		deadlines []time.Duration // of each attempt
		wantErr   bool
	}{
		{
			name:      "WithTimeout, all time out",
			opts:      []durable.StepOption{durable.WithTimeout(5 * time.Second), durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)})},
			deadlines: []time.Duration{5 * time.Second, 11 * time.Second},
			wantErr:   true,
		},
		{
			name:      "WithTimeout, second attempt succeeds",
			opts:      []durable.StepOption{durable.WithTimeout(5 * time.Second), durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)})},
			succeedAt: 2,
			deadlines: []time.Duration{5 * time.Second, 11 * time.Second},
		},
		{
			name:      "Policy.Timeout",
			opts:      []durable.StepOption{durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second), Timeout: 3 * time.Second})},
			deadlines: []time.Duration{3 * time.Second, 7 * time.Second},
			wantErr:   true,
		},
		{
			name:      "WithTimeout overrides Policy.Timeout",
			opts:      []durable.StepOption{durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second), Timeout: time.Hour}), durable.WithTimeout(5 * time.Second)},
			deadlines: []time.Duration{5 * time.Second, 11 * time.Second},
			wantErr:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := rtNewAttempts()
				var mu sync.Mutex
				var deadlines []time.Duration
				wf := durable.Define("rt-timeout", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
						n := a.record(ctx)
						d, ok := ctx.Deadline()
						if !ok {
							return "", retry.Permanent(errors.New("attempt has no deadline"))
						}
						mu.Lock()
						deadlines = append(deadlines, d.Sub(a.start))
						mu.Unlock()
						if n == tt.succeedAt {
							return "ok", nil
						}
						<-ctx.Done()
						return "", ctx.Err()
					}, tt.opts...)
				})
				env := durabletest.New(t, rtConfig(wf))
				out, err := durable.Run(t.Context(), env.Engine, wf, "to-1", "x")
				mu.Lock()
				if !slices.Equal(deadlines, tt.deadlines) {
					t.Errorf("attempt deadlines %v, want %v", deadlines, tt.deadlines)
				}
				mu.Unlock()
				if !tt.wantErr {
					if out != "ok" || err != nil {
						t.Fatalf("Run = %q, %v; want ok", out, err)
					}
					return
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Run error %v, want one matching context.DeadlineExceeded", err)
				}
				if errors.Is(err, durable.ErrCanceled) || errors.Is(err, durable.ErrDeadlineExceeded) {
					t.Errorf("Run error %v matches a run cancellation; an attempt timeout must not", err)
				}
				if se := rtStepError(t, err); se.Attempts != 2 {
					t.Errorf("StepError.Attempts = %d, want 2", se.Attempts)
				}
				if got, want := time.Since(a.start), tt.deadlines[len(tt.deadlines)-1]; got != want {
					t.Errorf("run finished at %v, want %v", got, want)
				}
			})
		})
	}
}

// TestRetryDefaultPolicy: without WithRetry a step makes 3 attempts, with
// exponential backoff from 1s and equal jitter.
func TestRetryDefaultPolicy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := rtNewAttempts()
		wf := durable.Define("rt-default", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "", errRtFlaky
			})
		})
		env := durabletest.New(t, rtConfig(wf))
		_, err := durable.Run(t.Context(), env.Engine, wf, "def-1", "x")
		if se := rtStepError(t, err); se.Attempts != 3 {
			t.Errorf("StepError.Attempts = %d, want 3", se.Attempts)
		}
		at := a.times()
		if len(at) != 3 {
			t.Fatalf("attempts at %v, want 3", at)
		}
		// Equal jitter: Delay(1) in [0.5s, 1s), Delay(2) in [1s, 2s).
		if g := at[1] - at[0]; g < 500*time.Millisecond || g >= time.Second {
			t.Errorf("first wait %v, want in [500ms, 1s)", g)
		}
		if g := at[2] - at[1]; g < time.Second || g >= 2*time.Second {
			t.Errorf("second wait %v, want in [1s, 2s)", g)
		}
	})
}

// TestRetryConfigDefaultRetry: Config.DefaultRetry applies to steps
// without WithRetry; WithRetry overrides it.
func TestRetryConfigDefaultRetry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dflt, own := rtNewAttempts(), rtNewAttempts()
		wf := durable.Define("rt-config-default", func(ctx durable.Context, in string) (string, error) {
			_, err1 := durable.Step(ctx, "default", func(ctx context.Context) (string, error) {
				dflt.record(ctx)
				return "", errRtFlaky
			})
			_, err2 := durable.Step(ctx, "own", func(ctx context.Context) (string, error) {
				own.record(ctx)
				return "", errRtFlaky
			}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
			return "", errors.Join(err1, err2)
		})
		cfg := rtConfig(wf)
		cfg.DefaultRetry = &retry.Policy{MaxAttempts: 4, Backoff: backoff.Constant(3 * time.Second)}
		env := durabletest.New(t, cfg)
		_, err := durable.Run(t.Context(), env.Engine, wf, "cd-1", "x")
		want := `durable: rt-config-default(cd-1) → step "default" failed after 4 attempts: flaky` + "\n" +
			`durable: rt-config-default(cd-1) → step "own" failed after 2 attempts: flaky`
		if err == nil || err.Error() != want {
			t.Errorf("Run error %v, want %q", err, want)
		}
		rtWantTimes(t, dflt, 0, 3*time.Second, 6*time.Second, 9*time.Second)
		rtWantTimes(t, own, 9*time.Second, 10*time.Second)
	})
}

// TestRetryStepErrorPath: the final error of a step in a child (and
// grandchild) workflow reads like a stack across await points, and keeps
// its message and types after the journal file is closed and reopened.
func TestRetryStepErrorPath(t *testing.T) {
	t.Parallel()
	child := durable.Define("child", func(ctx durable.Context, in string) (string, error) {
		return durable.Step(ctx, "x", func(ctx context.Context) (string, error) {
			return "", errors.New("boom")
		}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Millisecond)}))
	})
	parent := durable.Define("parent", func(ctx durable.Context, in string) (string, error) {
		return durable.RunChild(ctx, child, "", in)
	})
	grandparent := durable.Define("grandparent", func(ctx durable.Context, in string) (string, error) {
		return durable.RunChild(ctx, parent, "", in)
	})
	tests := []struct {
		wf      *durable.Workflow[string, string]
		id      string
		want    string
		childID string
		outer   durable.ChildError // the outermost ChildError, Err aside
	}{
		{parent, "p1", `durable: parent(p1) → child(p1/0) → step "x" failed after 2 attempts: boom`, "p1/0",
			durable.ChildError{Parent: "parent", ParentID: "p1", Workflow: "child", RunID: "p1/0"}},
		{grandparent, "g1", `durable: grandparent(g1) → parent(g1/0) → child(g1/0/0) → step "x" failed after 2 attempts: boom`, "g1/0/0",
			durable.ChildError{Parent: "grandparent", ParentID: "g1", Workflow: "parent", RunID: "g1/0"}},
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	cfg := rtConfig(grandparent, parent, child)
	check := func(t *testing.T, err error, want, childID string, outer durable.ChildError) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
		se := rtStepError(t, err)
		if se.Workflow != "child" || se.RunID != childID || se.Step != "x" || se.Position != 0 || se.Attempts != 2 || se.Err == nil || se.Err.Error() != "boom" {
			t.Errorf("StepError %+v, want child(%s) step x at 0 after 2 attempts: boom", se, childID)
		}
		ce, ok := errors.AsType[*durable.ChildError](err)
		if !ok {
			t.Fatalf("error %v has no *durable.ChildError", err)
		}
		if got := (durable.ChildError{Parent: ce.Parent, ParentID: ce.ParentID, Workflow: ce.Workflow, RunID: ce.RunID}); got != outer {
			t.Errorf("outermost ChildError %+v, want %+v", got, outer)
		}
	}

	e, err := durable.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		_, err := durable.Run(t.Context(), e, tt.wf, tt.id, "in")
		check(t, err, tt.want, tt.childID, tt.outer)
		info, err := e.Get(t.Context(), tt.childID)
		if err != nil || info.Status != durable.StatusFailed {
			t.Fatalf("child run: %v, %v", info.Status, err)
		}
		if want := `durable: child(` + tt.childID + `) → step "x" failed after 2 attempts: boom`; info.Err == nil || info.Err.Error() != want {
			t.Errorf("child run error %v, want %q", info.Err, want)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = durable.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, tt := range tests {
		h, err := durable.Start(t.Context(), e, tt.wf, tt.id, "in")
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(t.Context())
		check(t, err, tt.want, tt.childID, tt.outer)
		info, err := e.Get(t.Context(), tt.id)
		if err != nil || info.Status != durable.StatusFailed {
			t.Fatalf("Get(%s): %v, %v", tt.id, info.Status, err)
		}
		check(t, info.Err, tt.want, tt.childID, tt.outer)
	}
}

// TestRetryStepInfo: the attempt number counts from 1; run id, step,
// position and idempotency key stay the same across attempts and a
// restart, and the key differs between steps.
func TestRetryStepInfo(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, b := rtNewAttempts(), rtNewAttempts()
		wf := durable.Define("rt-info", func(ctx durable.Context, in string) (string, error) {
			if _, err := durable.Step(ctx, "a", func(ctx context.Context) (string, error) {
				if a.record(ctx) < 3 {
					return "", errRtFlaky
				}
				return "a", nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second)})); err != nil {
				return "", err
			}
			return durable.Step(ctx, "b", func(ctx context.Context) (string, error) {
				b.record(ctx)
				return "b", nil
			})
		})
		env := durabletest.New(t, rtConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "info-1", "x"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // attempts 1 and 2 failed; 3 is due at 2s
		synctest.Wait()
		env.Restart()
		if out, err := durable.Run(t.Context(), env.Engine, wf, "info-1", "x"); out != "b" || err != nil {
			t.Fatalf("Run = %q, %v", out, err)
		}
		rtWantTimes(t, a, 0, time.Second, 2*time.Second)
		infos := append(a.steps(), b.steps()...)
		want := []durable.StepInfo{
			{RunID: "info-1", Workflow: "rt-info", Step: "a", Position: 0, Attempt: 1, IdempotencyKey: "info-1/0"},
			{RunID: "info-1", Workflow: "rt-info", Step: "a", Position: 0, Attempt: 2, IdempotencyKey: "info-1/0"},
			{RunID: "info-1", Workflow: "rt-info", Step: "a", Position: 0, Attempt: 3, IdempotencyKey: "info-1/0"},
			{RunID: "info-1", Workflow: "rt-info", Step: "b", Position: 1, Attempt: 1, IdempotencyKey: "info-1/1"},
		}
		if !slices.Equal(infos, want) {
			t.Errorf("StepInfos:\n got %+v\nwant %+v", infos, want)
		}
		if _, ok := durable.StepInfoFrom(t.Context()); ok {
			t.Error("StepInfoFrom of a context that is not a step's reports ok")
		}
	})
}

// ---------------------------------------------------------------------------
// Limits.

// TestRetryLimitRateAndConcurrency runs 500 runs through one limited key:
// at most 3 steps execute at once, starts obey the token bucket (burst 5,
// 10 per second) in every window, and all complete.
func TestRetryLimitRateAndConcurrency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const (
			runs    = 500
			r       = 10
			burst   = 5
			maxConc = 3
		)
		start := time.Now()
		var cur, peak atomic.Int64
		var mu sync.Mutex
		var starts []time.Duration
		wf := durable.Define("rt-limited", func(ctx durable.Context, n int) (int, error) {
			return durable.Step(ctx, "crm", func(ctx context.Context) (int, error) {
				mu.Lock()
				starts = append(starts, time.Since(start))
				mu.Unlock()
				c := cur.Add(1)
				for {
					p := peak.Load()
					if c <= p || peak.CompareAndSwap(p, c) {
						break
					}
				}
				time.Sleep(100 * time.Millisecond)
				cur.Add(-1)
				return n * 2, nil
			}, durable.WithLimit("crm-api"))
		})
		cfg := rtConfig(wf)
		cfg.Limits = map[string]durable.Limit{"crm-api": {Rate: r, Burst: burst, MaxConcurrent: maxConc}}
		env := durabletest.New(t, cfg)
		handles := make([]*durable.Handle[int], runs)
		for i := range runs {
			h, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprintf("lim-%03d", i), i)
			if err != nil {
				t.Fatal(err)
			}
			handles[i] = h
		}
		for i, h := range handles {
			if out, err := h.Result(t.Context()); out != 2*i || err != nil {
				t.Fatalf("run %d: Result = %d, %v; want %d", i, out, err, 2*i)
			}
		}
		if p := peak.Load(); p > maxConc || p < 1 {
			t.Errorf("peak concurrency %d, want 1..%d", p, maxConc)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(starts) != runs {
			t.Fatalf("%d step starts, want %d (one attempt per run)", len(starts), runs)
		}
		slices.Sort(starts)
		// Token bucket: in any window [starts[i], starts[j]] of length w,
		// at most burst + r·w starts.
		for i := range starts {
			for j := i; j < len(starts); j++ {
				w := starts[j] - starts[i]
				if n, limit := float64(j-i+1), burst+r*w.Seconds(); n > limit {
					t.Fatalf("%v starts in the window [%v, %v] of %v, over the bound %v", n, starts[i], starts[j], w, limit)
				}
				if w.Seconds()*r > runs {
					break
				}
			}
		}
		// The rate is what binds: 500 starts take at least (500-5)/10 s.
		if last, min := starts[len(starts)-1], time.Duration(float64(runs-burst)/r*float64(time.Second)); last < min {
			t.Errorf("last start at %v, want no sooner than %v", last, min)
		}
	})
}

// TestRetryLimitWaitCanceled: a step waiting for a token or a slot returns
// at once with ErrCanceled when its run is canceled, and the wait is not
// an attempt (the step function is not called).
func TestRetryLimitWaitCanceled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		limit durable.Limit
		hog   bool // another run holds the only slot
	}{
		{"token", durable.Limit{Rate: rate.Every(time.Hour), Burst: 1}, false},
		{"slot", durable.Limit{MaxConcurrent: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := rtNewAttempts()
				releaseCh := make(chan struct{})
				release := sync.OnceFunc(func() { close(releaseCh) })
				hog := durable.Define("rt-hog", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "hold", func(ctx context.Context) (string, error) {
						<-releaseCh
						return "held", nil
					}, durable.WithLimit("k"))
				})
				victim := durable.Define("rt-victim", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
						a.record(ctx)
						return "", errRtFlaky
					}, durable.WithLimit("k"), durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second)}))
				})
				cfg := rtConfig(hog, victim)
				cfg.Limits = map[string]durable.Limit{"k": tt.limit}
				env := durabletest.New(t, cfg)
				t.Cleanup(release) // before Close, if the test stops early
				var hh *durable.Handle[string]
				if tt.hog {
					var err error
					if hh, err = durable.Start(t.Context(), env.Engine, hog, "hog", ""); err != nil {
						t.Fatal(err)
					}
					synctest.Wait() // the hog holds the slot
				}
				h, err := durable.Start(t.Context(), env.Engine, victim, "victim", "")
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				wantCalls := 1 // token: attempt 1 took the burst; attempt 2 waits
				if tt.hog {
					wantCalls = 0 // slot: attempt 1 waits
				}
				if n := len(a.times()); n != wantCalls {
					t.Fatalf("before the cancel: %d calls, want %d", n, wantCalls)
				}
				canceled := time.Now()
				if err := env.Engine.Cancel(t.Context(), "victim"); err != nil {
					t.Fatal(err)
				}
				_, err = h.Result(t.Context())
				if !errors.Is(err, durable.ErrCanceled) {
					t.Errorf("Result = %v, want ErrCanceled", err)
				}
				if _, ok := errors.AsType[*durable.StepError](err); ok {
					t.Errorf("Result = %v: a StepError, want the cancellation", err)
				}
				if d := time.Since(canceled); d != 0 {
					t.Errorf("Result returned %v after Cancel, want at once", d)
				}
				if n := len(a.times()); n != wantCalls {
					t.Errorf("after the cancel: %d calls, want %d", n, wantCalls)
				}
				if info, _ := env.Engine.Get(t.Context(), "victim"); info.Status != durable.StatusCanceled {
					t.Errorf("status %v, want canceled", info.Status)
				}
				if hh != nil {
					release()
					if out, err := hh.Result(t.Context()); out != "held" || err != nil {
						t.Errorf("hog: %q, %v", out, err)
					}
				}
			})
		})
	}
}

// TestRetryLimitWaitNotAnAttempt: a restart during a wait for a token
// counts no attempt: the attempt that runs after it has the number it
// was waiting with, and the final error counts only real attempts.
func TestRetryLimitWaitNotAnAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := rtNewAttempts()
		wf := durable.Define("rt-wait-restart", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "", errRtFlaky
			}, durable.WithLimit("k"), durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
		})
		cfg := rtConfig(wf)
		cfg.Limits = map[string]durable.Limit{"k": {Rate: rate.Every(time.Hour), Burst: 1}}
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "wr-1", ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // attempt 2 waits for a token since 1s
		synctest.Wait()
		env.Restart() // a new engine has a full bucket
		_, err := durable.Run(t.Context(), env.Engine, wf, "wr-1", "")
		if se := rtStepError(t, err); se.Attempts != 2 {
			t.Errorf("StepError.Attempts = %d, want 2", se.Attempts)
		}
		rtWantTimes(t, a, 0, 10*time.Second)
		var got []int
		for _, info := range a.steps() {
			got = append(got, info.Attempt)
		}
		if !slices.Equal(got, []int{1, 2}) {
			t.Errorf("StepInfo.Attempt of the calls: %v, want [1 2]", got)
		}
	})
}

// TestRetryLimitUnknownKey: WithLimit of a key missing from Config.Limits
// fails the step at once, without retries and without calling it.
func TestRetryLimitUnknownKey(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := rtNewAttempts()
		wf := durable.Define("rt-unknown-limit", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "ok", nil
			}, durable.WithLimit("no-such-key"), durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Second)}))
		})
		cfg := rtConfig(wf)
		cfg.Limits = map[string]durable.Limit{"crm-api": {Rate: 1}}
		env := durabletest.New(t, cfg)
		_, err := durable.Run(t.Context(), env.Engine, wf, "uk-1", "")
		se := rtStepError(t, err)
		if se.Attempts != 1 || !strings.Contains(err.Error(), `"no-such-key"`) {
			t.Errorf("error %v (%d attempts), want one attempt naming the key", err, se.Attempts)
		}
		if re, ok := errors.AsType[*durable.RecordedError](err); !ok || !re.Permanent {
			t.Errorf("cause %#v, want a permanent RecordedError", re)
		}
		if n := len(a.times()); n != 0 {
			t.Errorf("step function called %d times, want 0", n)
		}
		if d := time.Since(a.start); d != 0 {
			t.Errorf("failed after %v, want at once", d)
		}
	})
}

// ---------------------------------------------------------------------------
// At most once, in memory.

// TestRetryAtMostOnceRestart: an at-most-once step interrupted by
// Engine.Close (env.Restart) is not run again either; a plain failed
// attempt of such a step is retried, also across a restart in its backoff
// wait.
func TestRetryAtMostOnceRestart(t *testing.T) {
	t.Parallel()
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			a := rtNewAttempts()
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
			env := durabletest.New(t, rtConfig(wf))
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
			a := rtNewAttempts()
			wf := durable.Define("rt-amo-retry", func(ctx durable.Context, in string) (string, error) {
				return durable.Step(ctx, "charge", func(ctx context.Context) (string, error) {
					if a.record(ctx) == 1 {
						return "", errRtFlaky
					}
					return "charged", nil
				}, durable.AtMostOnce(), durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(2 * time.Second)}))
			})
			env := durabletest.New(t, rtConfig(wf))
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
			rtWantTimes(t, a, 0, 2*time.Second)
		})
	})
}
