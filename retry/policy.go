package retry

import (
	"math"
	"time"

	"github.com/durable-go/durable/backoff"
)

// defaultMaxAttempts is the number of attempts a zero MaxAttempts means.
const defaultMaxAttempts = 3

// defaultBackoff is the Backoff a nil Policy.Backoff means.
var defaultBackoff = backoff.Exponential{
	Initial:    time.Second,
	Max:        time.Minute,
	Multiplier: 2,
	Jitter:     backoff.EqualJitter,
}

// Policy decides whether a failed attempt is retried and how long to wait
// first. The zero value is usable (see the field defaults) and a Policy is
// safe for concurrent use if its Backoff and Retryable are.
type Policy struct {
	// MaxAttempts is the number of attempts in all, the first included:
	// 1 means no retries. Zero means the default; a negative value means
	// no limit. Defaults to 3.
	MaxAttempts int

	// Backoff computes the wait after each failed attempt. Defaults to
	// backoff.Exponential{Initial: time.Second, Max: time.Minute,
	// Multiplier: 2, Jitter: backoff.EqualJitter}.
	Backoff backoff.Backoff

	// Retryable classifies errors: it is called with the attempt's full
	// error (wrappers included) and returns false for an error that must
	// not be retried. It is not consulted for Permanent errors, which are
	// never retried. Defaults to retrying every error not marked
	// Permanent.
	Retryable func(error) bool

	// Timeout limits each attempt, not the whole sequence. The durable
	// engine, like Do, applies it as a context deadline on each attempt's
	// context; an attempt that exceeds it fails (usually with
	// context.DeadlineExceeded) and may be retried. Zero or negative
	// means no limit. Defaults to no limit.
	Timeout time.Duration
}

// Attempts returns the effective maximum number of attempts, the first
// included: MaxAttempts, 3 if MaxAttempts is zero, or math.MaxInt if
// MaxAttempts is negative (no limit).
func (p Policy) Attempts() int {
	switch {
	case p.MaxAttempts == 0:
		return defaultMaxAttempts
	case p.MaxAttempts < 0:
		return math.MaxInt
	}
	return p.MaxAttempts
}

// Next is called after attempt number attempt (starting at 1; values
// below 1 count as 1) failed with err. It reports whether to try again
// and, if so, how long to wait first. The rules apply in this order:
//
//  1. err == nil: no retry; there is nothing to retry.
//  2. err is marked [Permanent] anywhere in its chain: no retry.
//  3. Retryable is set and returns false for err: no retry.
//  4. attempt has reached [Policy.Attempts] (never, if MaxAttempts is
//     negative): no retry.
//  5. Otherwise retry after the larger of Backoff.Delay(attempt) and the
//     [RetryAfter] hint of err, if any.
//
// A Retry-After hint only lengthens the wait; it never makes an error
// retryable that rules 2–4 stop. When ok is false, delay is 0; delay is
// never negative.
func (p Policy) Next(attempt int, err error) (delay time.Duration, ok bool) {
	if err == nil || IsPermanent(err) {
		return 0, false
	}
	if p.Retryable != nil && !p.Retryable(err) {
		return 0, false
	}
	attempt = max(attempt, 1)
	if p.MaxAttempts >= 0 && attempt >= p.Attempts() {
		return 0, false
	}
	b := p.Backoff
	if b == nil {
		b = defaultBackoff
	}
	delay = max(b.Delay(attempt), 0) // a custom Backoff may break its contract
	if hint, found := RetryAfter(err); found {
		delay = max(delay, hint)
	}
	return delay, true
}
