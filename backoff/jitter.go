package backoff

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Jitter says how a computed delay d is randomized, to keep clients that
// failed together from retrying together. The zero value is [NoJitter].
type Jitter int

const (
	// NoJitter uses d unchanged.
	NoJitter Jitter = iota
	// FullJitter picks a delay uniformly in [0, d).
	FullJitter
	// EqualJitter picks d/2 plus a delay uniformly in [0, d/2), so the
	// result is in [d/2, d).
	EqualJitter
)

// String returns the constant's name, such as "FullJitter", or
// "Jitter(n)" for a value that is not one of the constants.
func (j Jitter) String() string {
	switch j {
	case NoJitter:
		return "NoJitter"
	case FullJitter:
		return "FullJitter"
	case EqualJitter:
		return "EqualJitter"
	}
	return "Jitter(" + strconv.Itoa(int(j)) + ")"
}

// apply randomizes d, which must not be negative, drawing from rnd (see
// random) only if j needs it. Values of j that are not constants act as
// NoJitter.
func (j Jitter) apply(d time.Duration, rnd func() float64) time.Duration {
	switch j {
	case FullJitter:
		return scale(d, random(rnd))
	case EqualJitter:
		half := d / 2
		return half + scale(half, random(rnd))
	}
	return d
}

// scale returns r×d in [0, d), or 0 if d <= 0. r must be in [0, 1).
func scale(d time.Duration, r float64) time.Duration {
	if d <= 0 {
		return 0
	}
	// float64(d) may round up, even to 2^63, but r < 1 keeps the product
	// below 2^63, so the conversion back cannot overflow.
	s := time.Duration(r * float64(d))
	return min(max(s, 0), d-1)
}

// below1 is the largest float64 less than 1.
var below1 = math.Nextafter(1, 0)

// random calls rnd, or math/rand/v2's Float64 if rnd is nil, and clamps
// the result to [0, 1); NaN becomes 0.
func random(rnd func() float64) float64 {
	if rnd == nil {
		return rand.Float64()
	}
	r := rnd()
	switch {
	case !(r >= 0): // negative or NaN
		return 0
	case r >= 1:
		return below1
	}
	return r
}
