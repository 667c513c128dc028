package durable

import "time"

// Clock is the engine's source of time: for timers, retry waits, run
// deadlines and [Now]. Set Config.Clock to control time in tests (see
// package durabletest for a clock you can move forwards and backwards).
// Implementations must be safe for concurrent use.
//
// Timers are set at absolute times, not durations: a clock that another
// goroutine moves between the engine's reading of Now and its setting of
// a timer must not shift the timer by the move.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// TimerAt returns a channel that receives once the clock reaches t
	// (at once if it has), and a function that stops the timer
	// (reporting whether it stopped it before it fired).
	TimerAt(t time.Time) (c <-chan time.Time, stop func() bool)
}

// systemClock is the real clock; inside a testing/synctest bubble it is the
// bubble's fake clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	t := time.NewTimer(time.Until(at))
	return t.C, t.Stop
}
