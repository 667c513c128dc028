package backoff

import "time"

// Backoff computes the wait before the next attempt.
//
// attempt is the number of the attempt that just failed, starting at 1:
// Delay(1) is the wait between attempt 1 and attempt 2. Implementations
// treat attempt <= 0 as 1 and never return a negative duration.
type Backoff interface {
	Delay(attempt int) time.Duration
}

// Constant waits the same duration after every attempt.
// A negative Constant waits zero. The zero value waits zero.
// It is safe for concurrent use.
type Constant time.Duration

// Delay returns c, or zero if c is negative. attempt is ignored.
func (c Constant) Delay(attempt int) time.Duration {
	return max(time.Duration(c), 0)
}
