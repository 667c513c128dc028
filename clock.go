package durable

import "time"

// Clock is the engine's source of time: for timers, retry waits, run
// deadlines and [Now]. Set Config.Clock to control time in tests (see
// package durabletest for a clock you can move forwards and backwards).
// Implementations must be safe for concurrent use.
//
// A Clock that another goroutine moves should also have a method
//
//	TimerAt(t time.Time) (c <-chan time.Time, stop func() bool)
//
// whose channel receives once the clock reaches t; the engine then sets
// its timers with it. With Timer alone, a move of the clock between the
// engine's reading of Now and its call to Timer shifts the timer by the
// move: a jump forwards would make it fire that much late.
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

// timerAtClock is a Clock with absolute timers (see [Clock]).
type timerAtClock interface {
	TimerAt(t time.Time) (c <-chan time.Time, stop func() bool)
}
