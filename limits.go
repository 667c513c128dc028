package durable

import (
	"context"
	"fmt"

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
	sem  chan struct{} // nil: no concurrency bound
}

func newLimiters(limits map[string]Limit) (map[string]*limiter, error) {
	out := make(map[string]*limiter, len(limits))
	for key, l := range limits {
		if l.Rate < 0 || l.Burst < 0 || l.MaxConcurrent < 0 {
			return nil, fmt.Errorf("durable: Config.Limits[%s]: negative Rate, Burst or MaxConcurrent", clip.Q(key))
		}
		lim := &limiter{}
		if l.Rate > 0 {
			lim.rate = rate.NewLimiter(l.Rate, max(l.Burst, 1))
		}
		if l.MaxConcurrent > 0 {
			lim.sem = make(chan struct{}, l.MaxConcurrent)
		}
		out[key] = lim
	}
	return out, nil
}

// acquire waits for the step's limit (concurrency slot, then a rate token)
// and for an engine step slot. On success the caller must call release
// with the same key.
func (e *Engine) acquire(ctx context.Context, key string) error {
	var lim *limiter
	if key != "" {
		lim = e.limits[key]
		if lim == nil {
			return retry.Permanent(invalidf("durable: WithLimit(%s): no such key in Config.Limits", clip.Q(key)))
		}
		if lim.sem != nil {
			select {
			case lim.sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if lim.rate != nil {
			if err := lim.rate.Wait(ctx); err != nil {
				if lim.sem != nil {
					<-lim.sem
				}
				return err
			}
		}
	}
	select {
	case e.stepSem <- struct{}{}: // the common case, without a blocking select
		return nil
	default:
	}
	select {
	case e.stepSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		if lim != nil && lim.sem != nil {
			<-lim.sem
		}
		return ctx.Err()
	}
}

// release gives back what acquire took.
func (e *Engine) release(key string) {
	<-e.stepSem
	if key != "" {
		if lim := e.limits[key]; lim != nil && lim.sem != nil {
			<-lim.sem
		}
	}
}
