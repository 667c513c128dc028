package durable

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/retry"
)

// Limit bounds the steps bound to one key (see [WithLimit]) across every
// run of the engine: at most Rate step attempts start per second (with
// bursts of Burst), and at most MaxConcurrent execute at once. Waiting for
// a token or a slot is canceled with the run and is not an attempt.
// The rate is measured on the system clock (which testing/synctest fakes),
// not on Config.Clock.
type Limit struct {
	// Rate is the steady number of attempts per second. Zero means no rate
	// limit.
	Rate rate.Limit
	// Burst is how many attempts may start at once after a quiet period.
	// Defaults to 1 (when Rate is set).
	Burst int
	// MaxConcurrent bounds attempts executing at once. Zero means no
	// bound.
	MaxConcurrent int
	// Adaptive makes the concurrency bound follow the upstream (AIMD, as
	// TCP does): it starts at MaxConcurrent, halves (down to 1) when an
	// attempt bound to the key fails with a [retry.After] hint (a 429 or
	// 503 with Retry-After), and grows back by one after IncreaseEvery
	// successful attempts, never above MaxConcurrent. Only attempts that
	// started under the current bound halve it, so a burst of rejections
	// from one overload counts once. Requires MaxConcurrent > 0.
	Adaptive bool
	// IncreaseEvery is how many successful attempts grow an adaptive bound
	// by one. Zero means the current bound: one more per window of
	// successes.
	IncreaseEvery int
}

// WithLimit binds the step to Config.Limits[key]. A key missing from
// Config.Limits fails the step at once, without running it, with a
// permanent error matching [ErrInvalid] (recorded like any final failure).
func WithLimit(key string) StepOption {
	return func(c *stepConfig) { c.limit = key }
}

// limiter enforces one Limit.
type limiter struct {
	rate *rate.Limiter // nil: no rate limit
	conc *concLimit    // nil: no concurrency bound
}

func newLimiters(limits map[string]Limit) (map[string]*limiter, error) {
	out := make(map[string]*limiter, len(limits))
	for key, l := range limits {
		if l.Rate < 0 || l.Burst < 0 || l.MaxConcurrent < 0 || l.IncreaseEvery < 0 {
			return nil, errorf("durable: Config.Limits[%s]: negative Rate, Burst, MaxConcurrent or IncreaseEvery", clip.Q(key))
		}
		if l.Adaptive && l.MaxConcurrent == 0 {
			return nil, errorf("durable: Config.Limits[%s]: Adaptive needs MaxConcurrent > 0", clip.Q(key))
		}
		lim := &limiter{}
		if l.Rate > 0 {
			lim.rate = rate.NewLimiter(l.Rate, max(l.Burst, 1))
		}
		if l.MaxConcurrent > 0 {
			lim.conc = newConcLimit(l)
		}
		out[key] = lim
	}
	return out, nil
}

// permit is what acquire took: the limiter (nil without a key) and the
// adaptive bound's generation when the slot was granted.
type permit struct {
	lim *limiter
	gen uint64
}

// acquire waits for the step's limit (concurrency slot, then a rate token)
// and for an engine step slot. On success the caller must call release
// with the permit and the attempt's error.
func (e *Engine) acquire(ctx context.Context, key string) (permit, error) {
	var p permit
	if key != "" {
		p.lim = e.limits[key]
		if p.lim == nil {
			return p, retry.Permanent(invalidf("durable: WithLimit(%s): no such key in Config.Limits", clip.Q(key)))
		}
		if c := p.lim.conc; c != nil {
			gen, err := c.acquire(ctx)
			if err != nil {
				return p, err
			}
			p.gen = gen
		}
		if p.lim.rate != nil {
			if err := p.lim.rate.Wait(ctx); err != nil {
				if c := p.lim.conc; c != nil {
					c.cancel()
				}
				return p, err
			}
		}
	}
	select {
	case e.stepSem <- struct{}{}: // the common case, without a blocking select
		return p, nil
	default:
	}
	select {
	case e.stepSem <- struct{}{}:
		return p, nil
	case <-ctx.Done():
		if p.lim != nil && p.lim.conc != nil {
			p.lim.conc.cancel()
		}
		return p, ctx.Err()
	}
}

// release gives back what acquire took; attemptErr (the attempt's error,
// nil on success) feeds an adaptive bound.
func (e *Engine) release(p permit, attemptErr error) {
	<-e.stepSem
	if p.lim != nil && p.lim.conc != nil {
		p.lim.conc.release(p.gen, attemptErr)
	}
}
