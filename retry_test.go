package durable_test

// Retries, backoff and rate limits that survive restarts: real process
// kills during a backoff wait and inside an at-most-once step, and exact
// virtual-time checks of the retry schedule inside testing/synctest
// bubbles.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

var errRtFlaky = errors.New("flaky")

// attempts records the step attempts of one test: when each started
// (time since the test began: virtual inside a bubble) and its StepInfo.
type attempts struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	infos []durable.StepInfo
}

func newAttempts() *attempts { return &attempts{start: time.Now()} }

// record notes an attempt and returns how many there were, this one
// included.
func (a *attempts) record(ctx context.Context) int {
	info, _ := durable.StepInfoFrom(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at = append(a.at, time.Since(a.start))
	a.infos = append(a.infos, info)
	return len(a.at)
}

func (a *attempts) times() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at)
}

func (a *attempts) steps() []durable.StepInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.infos)
}

// wantTimes checks the attempt times, exactly (virtual time).
func wantTimes(t *testing.T, a *attempts, want ...time.Duration) {
	t.Helper()
	if got := a.times(); !slices.Equal(got, want) {
		t.Errorf("attempts started at %v, want %v", got, want)
	}
}

// stepError returns the *durable.StepError in err's chain, failing the
// test if there is none.
func stepError(t *testing.T, err error) *durable.StepError {
	t.Helper()
	se, ok := errors.AsType[*durable.StepError](err)
	if !ok {
		t.Fatalf("error %v (%T) has no *durable.StepError in its chain", err, err)
	}
	return se
}

// ---------------------------------------------------------------------------
// Real crashes: the test binary runs TestRetryCrashChild as a child process.

// TestRetryRestartDuringBackoff restarts the engine during a 2s backoff
// wait: the next attempt starts exactly when it was due, not a full
// backoff after the restart; for Step and for Go.
func TestRetryRestartDuringBackoff(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"Step", "Go"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				a := newAttempts()
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
				env := durabletest.New(t, quietConfig(wf))
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
				wantTimes(t, a, 0, 2*time.Second)
				if got := time.Since(a.start); got != 2*time.Second {
					t.Errorf("run finished at %v, want 2s", got)
				}
			})
		})
	}
}

// panickyStep is a step function that panics.
func panickyStep(context.Context) (string, error) {
	panic("kaboom")
}

// TestRetryPanicIsFailedAttempt: a panicking step is a failed attempt with
// its stack; the final error is a StepError wrapping a PanicError, also
// after a restart.
func TestRetryPanicIsFailedAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a := newAttempts()
		wf := durable.Define("rt-panic", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "explode", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return panickyStep(ctx)
			}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
		})
		env := durabletest.New(t, quietConfig(wf))
		check := func(err error) {
			t.Helper()
			const want = `durable: rt-panic(p-1) → step "explode" failed after 2 attempts: panic: kaboom`
			if err == nil || err.Error() != want {
				t.Fatalf("error %v, want %q", err, want)
			}
			if se := stepError(t, err); se.Attempts != 2 || se.Step != "explode" {
				t.Errorf("StepError %+v, want 2 attempts of step explode", se)
			}
			pe, ok := errors.AsType[*durable.PanicError](err)
			if !ok {
				t.Fatalf("error %v has no *durable.PanicError in its chain", err)
			}
			if pe.Value != "kaboom" {
				t.Errorf("PanicError.Value = %q, want kaboom", pe.Value)
			}
			if pe.Stack == "" || !strings.Contains(pe.Stack, "panickyStep") {
				t.Errorf("PanicError.Stack does not name the panicking function:\n%s", pe.Stack)
			}
		}
		_, err := durable.Run(t.Context(), env.Engine, wf, "p-1", "x")
		check(err)
		wantTimes(t, a, 0, time.Second)
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
				a := newAttempts()
				wf := durable.Define("rt-permanent", func(ctx durable.Context, in string) (string, error) {
					return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
						a.record(ctx)
						return "", tt.err
					}, durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Second)}))
				})
				env := durabletest.New(t, quietConfig(wf))
				_, err := durable.Run(t.Context(), env.Engine, wf, "perm-1", "x")
				want := `durable: rt-permanent(perm-1) → step "call" failed after 1 attempt: ` + tt.want
				if err == nil || err.Error() != want {
					t.Fatalf("Run error %v, want %q", err, want)
				}
				if se := stepError(t, err); se.Attempts != 1 {
					t.Errorf("StepError.Attempts = %d, want 1", se.Attempts)
				}
				if re, ok := errors.AsType[*durable.RecordedError](err); !ok || !re.Permanent {
					t.Errorf("recorded cause %#v, want a RecordedError marked Permanent", re)
				}
				wantTimes(t, a, 0)
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
				a := newAttempts()
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
				env := durabletest.New(t, quietConfig(wf))
				out, err := durable.Run(t.Context(), env.Engine, wf, "after-1", "x")
				if out != "ok" || err != nil {
					t.Fatalf("Run = %q, %v; want ok", out, err)
				}
				wantTimes(t, a, tt.want...)
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
				a := newAttempts()
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
				env := durabletest.New(t, quietConfig(wf))
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
				if se := stepError(t, err); se.Attempts != 2 {
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
		a := newAttempts()
		wf := durable.Define("rt-default", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "", errRtFlaky
			})
		})
		env := durabletest.New(t, quietConfig(wf))
		_, err := durable.Run(t.Context(), env.Engine, wf, "def-1", "x")
		if se := stepError(t, err); se.Attempts != 3 {
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
		dflt, own := newAttempts(), newAttempts()
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
		cfg := quietConfig(wf)
		cfg.DefaultRetry = &retry.Policy{MaxAttempts: 4, Backoff: backoff.Constant(3 * time.Second)}
		env := durabletest.New(t, cfg)
		_, err := durable.Run(t.Context(), env.Engine, wf, "cd-1", "x")
		want := `durable: rt-config-default(cd-1) → step "default" failed after 4 attempts: flaky` + "\n" +
			`durable: rt-config-default(cd-1) → step "own" failed after 2 attempts: flaky`
		if err == nil || err.Error() != want {
			t.Errorf("Run error %v, want %q", err, want)
		}
		wantTimes(t, dflt, 0, 3*time.Second, 6*time.Second, 9*time.Second)
		wantTimes(t, own, 9*time.Second, 10*time.Second)
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
	cfg := quietConfig(grandparent, parent, child)
	check := func(t *testing.T, err error, want, childID string, outer durable.ChildError) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
		se := stepError(t, err)
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
		a, b := newAttempts(), newAttempts()
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
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "info-1", "x"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // attempts 1 and 2 failed; 3 is due at 2s
		synctest.Wait()
		env.Restart()
		if out, err := durable.Run(t.Context(), env.Engine, wf, "info-1", "x"); out != "b" || err != nil {
			t.Fatalf("Run = %q, %v", out, err)
		}
		wantTimes(t, a, 0, time.Second, 2*time.Second)
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
