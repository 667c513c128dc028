package backoff

import (
	"math"
	"time"
)

// Defaults for the zero fields of [Exponential].
const (
	defaultInitial    = time.Second
	defaultMax        = time.Minute
	defaultMultiplier = 2
)

// Exponential waits Initial × Multiplier^(attempt-1), capped at Max, then
// randomized by Jitter. Large attempt numbers and multipliers saturate at
// Max; they never overflow.
//
// The zero value is usable: 1s, 2s, 4s, 8s, … capped at 1 minute, with no
// jitter. An Exponential is safe for concurrent use if its Rand is.
type Exponential struct {
	// Initial is the delay after the first attempt, before jitter.
	// Zero or negative means the default. Defaults to 1 second.
	Initial time.Duration

	// Max caps the delay before jitter is applied, so the result never
	// exceeds it. An Initial above Max is capped too. Zero or negative
	// means the default. Defaults to 1 minute.
	Max time.Duration

	// Multiplier is the growth factor between consecutive delays.
	// Zero, negative or NaN means the default; a value between 0 and 1 is
	// treated as 1 (a constant delay of Initial). Defaults to 2.
	Multiplier float64

	// Jitter randomizes the capped delay. A value that is not one of the
	// Jitter constants acts as NoJitter. Defaults to NoJitter.
	Jitter Jitter

	// Rand returns a pseudo-random number in [0, 1) and is called once per
	// jittered Delay; it is not called for NoJitter. Values outside
	// [0, 1) are clamped into it and NaN counts as 0. It must be safe for
	// concurrent use if the Exponential is used concurrently. Inject it to
	// make jitter deterministic in tests. Defaults to math/rand/v2's
	// Float64, which is safe for concurrent use.
	Rand func() float64
}

// Delay returns the wait after attempt number attempt failed; attempt <= 0
// is treated as 1. The result is in [0, Max] (with Max's default applied).
func (e Exponential) Delay(attempt int) time.Duration {
	attempt = max(attempt, 1)
	initial := e.Initial
	if initial <= 0 {
		initial = defaultInitial
	}
	limit := e.Max
	if limit <= 0 {
		limit = defaultMax
	}
	mult := e.Multiplier
	switch {
	case !(mult > 0): // zero, negative or NaN
		mult = defaultMultiplier
	case mult < 1:
		mult = 1
	}

	d := limit
	// In float64 so nothing wraps: Pow saturates at +Inf, and Inf or any
	// value not below float64(limit) (which may round up) selects limit.
	// A value below float64(limit) <= 2^63 converts back without overflow.
	if f := math.Round(float64(initial) * math.Pow(mult, float64(attempt-1))); f < float64(limit) {
		d = min(time.Duration(f), limit)
	}
	return e.Jitter.apply(d, e.Rand)
}
