package durabletest

import (
	"sync"
	"time"

	"github.com/durable-go/durable"
)

// Clock is a [durable.Clock] that moves only when told: set
// Config.Clock to one to jump time forwards and backwards in a test.
// Timers fire when the clock reaches their time (never early, once), and
// a jump backwards fires nothing. The zero value is not usable; call
// [NewClock]. A Clock is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*clockTimer]struct{}
}

type clockTimer struct {
	at time.Time
	c  chan time.Time
}

var _ durable.Clock = (*Clock)(nil)

// NewClock returns a clock that reads start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, timers: map[*clockTimer]struct{}{}}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer is [Clock.TimerAt] at now+d.
func (c *Clock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timerAtLocked(c.now.Add(d))
}

// TimerAt implements [durable.Clock]: the channel receives once the clock
// reaches t (at once if it has).
func (c *Clock) TimerAt(t time.Time) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timerAtLocked(t)
}

func (c *Clock) timerAtLocked(at time.Time) (<-chan time.Time, func() bool) {
	t := &clockTimer{at: at, c: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.c <- c.now
		return t.c, func() bool { return false }
	}
	c.timers[t] = struct{}{}
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// Advance moves the clock by d (backwards if d is negative) and fires the
// timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t and fires the timers that are due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

func (c *Clock) setLocked(t time.Time) {
	c.now = t
	for tm := range c.timers {
		if !tm.at.After(t) {
			tm.c <- t
			delete(c.timers, tm)
		}
	}
}
