package durable_test

// Adaptive limits in virtual time: a fake upstream answers 429 with a
// Retry-After hint whenever more calls than its hidden capacity are in
// flight; an adaptive limit learns the capacity and draws far fewer 429s
// than a fixed limit above it.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

// upstream is a fake API with a hidden capacity: a call beyond it fails
// at once with a 429 and a Retry-After hint, a call within it takes
// 100 ms.
type upstream struct {
	capacity       int64
	inFlight       atomic.Int64
	ok, rejections atomic.Int64
}

func (u *upstream) call(ctx context.Context) error {
	n := u.inFlight.Add(1)
	defer u.inFlight.Add(-1)
	if n > u.capacity {
		time.Sleep(5 * time.Millisecond)
		u.rejections.Add(1)
		return retry.After(errors.New("429 Too Many Requests"), 100*time.Millisecond)
	}
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	u.ok.Add(1)
	return nil
}

// adaptiveResult is what one pass over the upstream measured.
type adaptiveResult struct {
	rejections int64
	elapsed    time.Duration
	bounds     []int // the limit's bound, sampled after each success past the warm-up
}

// runAgainstUpstream runs `runs` runs, each calling the upstream once
// through the "api" limit, and reports the 429s they drew.
func runAgainstUpstream(t *testing.T, lim durable.Limit, capacity int64, runs int) adaptiveResult {
	var res adaptiveResult
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{capacity: capacity}
		var env *durabletest.Env
		var mu sync.Mutex
		var done atomic.Int64
		wf := durable.Define("adaptive-call", func(ctx durable.Context, n int) (int, error) {
			return durable.Step(ctx, "call", func(ctx context.Context) (int, error) {
				if err := up.call(ctx); err != nil {
					return 0, err
				}
				if done.Add(1) > int64(runs/4) { // past the warm-up
					b := env.Engine.Stats().Limits["api"].Concurrency
					mu.Lock()
					res.bounds = append(res.bounds, b)
					mu.Unlock()
				}
				return n, nil
			}, durable.WithLimit("api"), durable.WithRetry(retry.Policy{MaxAttempts: -1, Backoff: backoff.Constant(10 * time.Millisecond)}))
		})
		cfg := quietConfig(wf)
		cfg.Limits = map[string]durable.Limit{"api": lim}
		env = durabletest.New(t, cfg)
		start := time.Now()
		handles := make([]*durable.Handle[int], runs)
		for i := range runs {
			h, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprintf("call-%03d", i), i)
			if err != nil {
				t.Fatal(err)
			}
			handles[i] = h
		}
		for i, h := range handles {
			if out, err := h.Result(t.Context()); out != i || err != nil {
				t.Fatalf("run %d: Result = %d, %v", i, out, err)
			}
		}
		res.elapsed = time.Since(start)
		res.rejections = up.rejections.Load()
		if got := up.ok.Load(); got != int64(runs) {
			t.Errorf("upstream served %d calls, want %d", got, runs)
		}
	})
	return res
}

// TestLimitAdaptiveFollowsUpstream: with a hidden capacity of 8 and a
// MaxConcurrent of 32, the adaptive bound settles around the capacity
// (AIMD saw-tooth between about half of it and just above it) and the
// 429s drop to a small fraction of the fixed limit's, for about the same
// (virtual) time to serve all calls.
func TestLimitAdaptiveFollowsUpstream(t *testing.T) {
	t.Parallel()
	const (
		capacity = 8
		maxConc  = 32
		runs     = 200
	)
	fixed := runAgainstUpstream(t, durable.Limit{MaxConcurrent: maxConc}, capacity, runs)
	adaptive := runAgainstUpstream(t, durable.Limit{MaxConcurrent: maxConc, Adaptive: true}, capacity, runs)
	t.Logf("fixed: %d 429s in %v; adaptive: %d 429s in %v", fixed.rejections, fixed.elapsed, adaptive.rejections, adaptive.elapsed)
	if fixed.rejections == 0 {
		t.Fatal("the fixed limit above the capacity drew no 429: the upstream does not push back")
	}
	if adaptive.rejections*5 > fixed.rejections {
		t.Errorf("adaptive limit drew %d 429s, fixed %d: want at most a fifth", adaptive.rejections, fixed.rejections)
	}
	// Virtual time: the upstream serves the same work about as fast.
	if adaptive.elapsed > fixed.elapsed*3/2 {
		t.Errorf("adaptive limit took %v, fixed %v: want at most 1.5 times as long", adaptive.elapsed, fixed.elapsed)
	}
	if len(adaptive.bounds) == 0 {
		t.Fatal("no bound sampled")
	}
	sum, hi := 0, 0
	for _, b := range adaptive.bounds {
		sum += b
		hi = max(hi, b)
	}
	mean := float64(sum) / float64(len(adaptive.bounds))
	t.Logf("adaptive bound after warm-up: mean %.1f, max %d over %d samples", mean, hi, len(adaptive.bounds))
	if mean < capacity/2 || mean > capacity+1 {
		t.Errorf("adaptive bound averages %.1f after warm-up, want near the capacity %d (in [%d, %d])", mean, capacity, capacity/2, capacity+1)
	}
	if hi > 2*capacity {
		t.Errorf("adaptive bound reached %d after warm-up, want at most %d", hi, 2*capacity)
	}
	for _, b := range fixed.bounds {
		if b != maxConc {
			t.Fatalf("fixed bound moved to %d", b)
		}
	}
}

// TestLimitAdaptiveNeedsMaxConcurrent: Adaptive without a bound to adapt
// is a configuration error.
func TestLimitAdaptiveNeedsMaxConcurrent(t *testing.T) {
	t.Parallel()
	wf := durable.Define("adaptive-bad", func(ctx durable.Context, n int) (int, error) { return n, nil })
	for _, lim := range []durable.Limit{{Adaptive: true}, {MaxConcurrent: 2, IncreaseEvery: -1}} {
		cfg := quietConfig(wf)
		cfg.Limits = map[string]durable.Limit{"api": lim}
		e, err := durable.Open(t.TempDir()+"/j.db", cfg)
		if err == nil {
			e.Close()
			t.Errorf("Open with Limits %+v succeeded, want an error", lim)
		}
	}
}
