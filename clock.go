package durable

import "time"

// Clock is the engine's source of time: for timers, retry waits, run
// deadlines and [Now]. Set Config.Clock to control time in tests (see
// package durabletest for a clock you can move forwards and backwards).
// Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Timer returns a channel that receives once d has passed on this
	// clock, and a function that stops the timer (reporting whether it
	// stopped it before it fired).
	Timer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

// systemClock is the real clock; inside a testing/synctest bubble it is the
// bubble's fake clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
