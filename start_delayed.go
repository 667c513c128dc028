package durable

import (
	"time"

	"github.com/durable-go/durable/journal"
)

// StartAt makes a run begin at t: the run is created at once (its id is
// taken, messages sent to it wait in its inbox, [Engine.Get] shows it
// running with RunInfo.WakeAt = t) but its workflow function is not called
// before t. The start time is journaled as the run's wake time, so it
// survives restarts, and a start that fell due while no engine ran happens
// when the run is resumed. A t in the past starts at once. Canceling the
// run before t ends it canceled without calling the workflow. A deadline
// from [WithRunTimeout] counts from the creation, not from t. Options are
// for the run's creation: they change nothing when the id exists.
func StartAt(t time.Time) StartOption {
	return func(c *startConfig) { c.startAt = t }
}

// StartAfter is [StartAt] at d from the run's creation.
func StartAfter(d time.Duration) StartOption {
	return func(c *startConfig) { c.startAfter = d }
}

// WaitStart is the kind of wait (see [WaitEvent]) of a run created with
// [StartAt] or [StartAfter] before its start time.
const WaitStart = "start"

// startFrom returns the delayed start time of a run created at now, or
// zero if it starts at once. The later of StartAt and StartAfter wins.
func (c *startConfig) startFrom(now time.Time) time.Time {
	t := c.startAt
	if c.startAfter > 0 {
		if a := later(now, c.startAfter); a.After(t) {
			t = a
		}
	}
	if t.IsZero() || !t.After(now) {
		return time.Time{}
	}
	return journalTime(t)
}

// awaitStart holds a run created with a start time until that time. Such
// a run is recognized by its journal: nothing recorded in its first epoch
// and a wake time set at creation (every durable operation that sets a
// wake time also records). On the workflow goroutine, before the workflow
// function is called. It returns the cancellation if the run is canceled
// before it starts.
func (x *executor) awaitStart() error {
	at := x.row.WakeAt
	if x.row.Epoch != 0 || len(x.recs) != 0 || at.IsZero() || x.replay != nil {
		return nil
	}
	if at.After(x.now()) {
		x.e.wakes.add(x.id, at, false)
		x.waitFor(WaitStart, "", 0)
		x.wait(func() bool { return !x.now().Before(at) || x.run.cancelRequested() != nil })
	}
	if err := x.run.cancelRequested(); err != nil {
		return err
	}
	// The start time is over: clear it, so a wait that sets no timer
	// (a Receive) is not taken for a due one. A crash before this commit
	// finds the time passed and clears it then.
	x.write(&time.Time{})
	return nil
}

// delayedStart is what RunInfo.Pending shows of a run waiting for its
// start time: one "start" operation, due then.
func delayedStart(recs []journal.Record, info *RunInfo) []Operation {
	if len(recs) != 0 || info.WakeAt.IsZero() {
		return nil
	}
	return []Operation{{Kind: WaitStart, Due: info.WakeAt}}
}
