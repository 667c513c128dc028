package durable_test

// Retries, backoff and rate limits that survive restarts: real process
// kills during a backoff wait and inside an at-most-once step, and exact
// virtual-time checks of the retry schedule inside testing/synctest
// bubbles.

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	"github.com/durable-go/durable/retry"
)

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
		cfg := quietConfig(wf)
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
				a := newAttempts()
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
				cfg := quietConfig(hog, victim)
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
		a := newAttempts()
		wf := durable.Define("rt-wait-restart", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "", errRtFlaky
			}, durable.WithLimit("k"), durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
		})
		cfg := quietConfig(wf)
		cfg.Limits = map[string]durable.Limit{"k": {Rate: rate.Every(time.Hour), Burst: 1}}
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "wr-1", ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // attempt 2 waits for a token since 1s
		synctest.Wait()
		env.Restart() // a new engine has a full bucket
		_, err := durable.Run(t.Context(), env.Engine, wf, "wr-1", "")
		if se := stepError(t, err); se.Attempts != 2 {
			t.Errorf("StepError.Attempts = %d, want 2", se.Attempts)
		}
		wantTimes(t, a, 0, 10*time.Second)
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
		a := newAttempts()
		wf := durable.Define("rt-unknown-limit", func(ctx durable.Context, in string) (string, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (string, error) {
				a.record(ctx)
				return "ok", nil
			}, durable.WithLimit("no-such-key"), durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Second)}))
		})
		cfg := quietConfig(wf)
		cfg.Limits = map[string]durable.Limit{"crm-api": {Rate: 1}}
		env := durabletest.New(t, cfg)
		_, err := durable.Run(t.Context(), env.Engine, wf, "uk-1", "")
		se := stepError(t, err)
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
