package durable

import (
	"time"

	"github.com/durable-go/durable/journal"
)

// Sleep pauses the workflow for d, durably: the wake-up time is journaled
// (with the run's entry in the wake-time index) before the workflow
// waits, so a restart neither loses nor restarts the timer, and a timer
// that fell due while the process was down fires as soon as the run is
// resumed. It returns nil, or the run's cancellation (an error matching
// [ErrCanceled]). A d of zero or less returns at once. Times are kept in
// nanoseconds since 1970 in an int64: a wake-up time past 2262-04-11
// (Sleep(ctx, math.MaxInt64), say) saturates there, a wait that long is
// "forever"; one before 1677 is in the past. The same holds for every
// durable time: [SleepUntil], [ReceiveTimeout], [NewTimer], retry waits,
// [WithDeadline] and [WithRunTimeout], and [Now] read from a Config.Clock
// outside that range.
func Sleep(ctx Context, d time.Duration) error {
	return sleep(ctx, func(now time.Time) time.Time { return later(now, d) })
}

// SleepUntil pauses the workflow until t, like [Sleep].
func SleepUntil(ctx Context, t time.Time) error {
	return sleep(ctx, func(time.Time) time.Time { return t })
}

func sleep(ctx Context, until func(now time.Time) time.Time) error {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return err
	}
	defer x.leave()
	o, rec, settled := x.begin(ctx, kindSleep, "")
	if settled {
		return outcomeErr(rec)
	}
	var at time.Time
	if len(o.recs) > 0 {
		at = o.recs[0].Time // the timer was set before a restart
	} else {
		if x.replaying() {
			// Nothing recorded here, yet the journal goes on: the first
			// execution found the time passed and did not wait. Replay
			// must not wait either, whatever the clock reads now (it may
			// have moved back).
			return nil
		}
		if cause := x.pendingCancel(ctx); cause != nil {
			x.deliverLive(&o, kindSleep, "", cause)
			return x.cancelErr
		}
		at = journalTime(until(x.now()))
		if !at.After(x.now()) {
			return nil
		}
		r := o.record(kindSleep, "", 0)
		r.Time = at
		x.write(&at, r)
	}
	return x.waitTimer(ctx, &o, kindSleep, "", at)
}

// waitTimer waits on the workflow goroutine until at, then records the
// timer's firing at o; or until the run's cancellation, which it delivers.
func (x *executor) waitTimer(ctx Context, o *op, kind uint8, name string, at time.Time) error {
	x.e.wakes.add(x.id, at, false)
	x.waitFor(WaitSleep, name, o.pos)
	x.wait(func() bool { return !x.now().Before(at) || x.pendingCancel(ctx) != nil })
	if cause := x.pendingCancel(ctx); cause != nil {
		x.deliverLive(o, kind, name, cause)
		return x.cancelErr
	}
	crashPoint("timer-fire", x.id, int(o.pos))
	x.write(&time.Time{}, o.record(kind, name, flagDone))
	return nil
}

// Now returns the current time, journaled: on replay it returns the time
// recorded the first time. Use it instead of time.Now in workflow code.
// The time is in UTC, without a monotonic reading.
func Now(ctx Context) time.Time {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return journalTime(x.now()) // not journaled: no workflow will replay it
	}
	defer x.leave()
	o := x.take(kindNow, "")
	if o.full {
		x.park(x.tooLong())
	}
	if done, ok := o.done(); ok {
		return done.Time
	}
	r := o.record(kindNow, "", flagDone)
	r.Time = journalTime(x.now())
	x.write(nil, r)
	return r.Time
}

// journalTime is t as the journal gives it back: UTC, nanoseconds, no
// monotonic reading, saturated to the times the journal holds (see
// journal.NormTime). Every time the engine computes goes through it (or
// through later), so no time or duration wraps around: a "forever" wait
// waits until 2262, a time long past is past.
func journalTime(t time.Time) time.Time { return journal.NormTime(t) }

// later is journalTime(t + d): d from t, saturated. time.Time.Add itself
// does not overflow for any Duration from a time the journal holds.
func later(t time.Time, d time.Duration) time.Time { return journalTime(t.Add(d)) }
