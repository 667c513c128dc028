package durable

import (
	"errors"
	"fmt"
	"time"

	"github.com/durable-go/durable/journal"
)

// Awaitable is what [AwaitAny] and [AwaitAll] wait for: a [*Future] (of a
// step or a child workflow), a [*Timer], or a [*ReceiveCase].
type Awaitable interface {
	// poll reports whether the item is ready now. For a receive case it
	// returns the message that would be taken.
	poll(x *executor) (bool, *journal.Message, error)
	// take applies a win: for a receive case, the recorded message.
	take(x *executor, data []byte) error
}

// poll implements Awaitable.
func (f *Future[T]) poll(*executor) (bool, *journal.Message, error) { return f.st.check(), nil, nil }

// take implements Awaitable.
func (f *Future[T]) take(*executor, []byte) error { return nil }

// Timer is a durable timer for [AwaitAny]: "whichever comes first, the
// message or three days". Its wake-up time is journaled when it is made.
// It can be canceled ([Timer.Cancel], [WithCancel]).
type Timer struct {
	at time.Time

	// For cancellation (cancel_scope.go); the workflow goroutine's.
	x           *executor    // set once the timer took its position
	pos         uint32       // its journal position
	scope       *cancelScope // the scope it was made under, or nil
	early       bool         // made under a scope canceled already
	cancelAsked bool         // Cancel was called
	canceledAt  time.Time    // when, as journaled
}

// NewTimer starts a timer that fires d from now. It takes a journal
// position; its wake-up time is journaled, so a restart neither loses nor
// restarts it.
func NewTimer(ctx Context, d time.Duration) *Timer {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return &Timer{at: later(x.now(), d)} // not journaled: no workflow will replay it
	}
	defer x.leave()
	o := x.take(kindTimer, "")
	if o.full {
		x.park(x.tooLong())
	}
	t := &Timer{x: x, pos: o.pos, scope: ctx.scope()}
	t.early = t.scope.isCanceled()
	t.scope.markAsync()
	if len(o.recs) > 0 {
		t.at = o.recs[0].Time
	} else {
		t.at = later(x.now(), d)
		r := o.record(kindTimer, "", flagDone)
		r.Time = t.at
		x.write(&t.at, r)
	}
	x.e.wakes.add(x.id, t.at, false)
	return t
}

// At returns when the timer fires.
func (t *Timer) At() time.Time { return t.at }

// poll implements Awaitable: a timer is ready once it fired or was
// canceled.
func (t *Timer) poll(x *executor) (bool, *journal.Message, error) {
	return !x.now().Before(t.at) || t.canceled(), nil, nil
}

// take implements Awaitable.
func (t *Timer) take(*executor, []byte) error { return nil }

// ReceiveCase is a message receive for [AwaitAny]: if it wins, the oldest
// message on its channel is taken from the inbox (exactly once, recorded
// with the AwaitAny) and Value returns it. Make one with [OnReceive].
type ReceiveCase[T any] struct {
	channel string
	value   T
	ok      bool
}

// OnReceive returns a receive case on channel for [AwaitAny]. It takes no
// journal position of its own and may be reused.
func OnReceive[T any](channel string) *ReceiveCase[T] {
	return &ReceiveCase[T]{channel: channel}
}

// Value returns the message the case received when it last won, and
// whether it ever won.
func (c *ReceiveCase[T]) Value() (T, bool) { return c.value, c.ok }

// poll implements Awaitable.
func (c *ReceiveCase[T]) poll(x *executor) (bool, *journal.Message, error) {
	msgs, err := x.nextMessage(c.channel)
	if err != nil || len(msgs) == 0 {
		return false, nil, err
	}
	return true, &msgs[0], nil
}

// take implements Awaitable.
func (c *ReceiveCase[T]) take(x *executor, data []byte) error {
	var v T
	if err := decodePayload(data, &v, x.e.cfg.MaxPayloadBytes); err != nil {
		return payloadErr(err, "message on channel %q of run %q", c.channel, x.id)
	}
	c.value, c.ok = v, true
	return nil
}

// selectOutcome is the Data of a select's record: which item won, and the
// message it took if it was a receive case.
type selectOutcome struct {
	Index   int    `msgpack:"i"`
	Message []byte `msgpack:"m,omitempty"`
}

// AwaitAny waits until one of items is ready and returns its index: the
// first ready one in argument order when several are. Which one won is
// journaled, so replay takes the same branch whatever finishes first the
// next time. A winning [*ReceiveCase] takes its message in the same
// commit. It returns the run's cancellation (an error matching
// [ErrCanceled]) if that comes first. AwaitAny takes a journal position.
func AwaitAny(ctx Context, items ...Awaitable) (int, error) {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return -1, err
	}
	defer x.leave()
	for _, it := range items {
		if rc, ok := it.(interface{ channelName() string }); ok {
			if err := checkChannel(rc.channelName()); err != nil {
				return -1, err
			}
		}
	}
	o, rec, settled := x.begin(ctx, kindSelect, "")
	if settled {
		if err := outcomeErr(rec); err != nil {
			return -1, err
		}
		return applyOutcome(x, items, rec.Data)
	}
	if len(items) == 0 {
		return -1, errors.New("durable: AwaitAny of nothing")
	}
	win, msg := -1, (*journal.Message)(nil)
	var pollErr error
	x.waitFor(WaitSelect, "", o.pos)
	x.wait(func() bool {
		for i, it := range items {
			ok, m, err := it.poll(x)
			if err != nil {
				pollErr = err
				return true
			}
			if ok {
				win, msg = i, m
				return true
			}
		}
		return x.pendingCancel(ctx) != nil
	})
	if pollErr != nil {
		x.stop(x.commitFailure(pollErr))
		x.exit()
	}
	if win < 0 {
		x.deliverLive(&o, kindSelect, "", x.pendingCancel(ctx))
		return -1, x.cancelErr
	}
	out := selectOutcome{Index: win}
	b := &journal.Batch{}
	if msg != nil {
		out.Message = msg.Data
		if err := items[win].take(x, msg.Data); err != nil {
			x.park(err) // the message stays in the inbox
		}
		b.Consume = []journal.MessageKey{{RunID: x.id, Channel: msg.Channel, Seq: msg.Seq}}
	}
	data, err := marshal(&out)
	if err != nil { // unreachable: plain data
		x.park(err)
	}
	r := o.record(kindSelect, "", flagDone)
	r.Data = data
	b.Append = []journal.Append{x.appendOf(r)}
	if !x.commit(b) {
		x.exit()
	}
	return win, nil
}

// applyOutcome replays a recorded select.
func applyOutcome(x *executor, items []Awaitable, data []byte) (int, error) {
	var out selectOutcome
	if err := unmarshal(data, &out); err != nil || out.Index < 0 || out.Index >= len(items) {
		x.park(&NondeterminismError{RunID: x.id, Workflow: x.run.def.Name(), Position: int(x.next - 1),
			Recorded: fmt.Sprintf("select won by item %d", out.Index), Called: fmt.Sprintf("select of %d items", len(items)), Location: callerOutside()})
	}
	if out.Message != nil {
		if err := items[out.Index].take(x, out.Message); err != nil {
			x.park(err)
		}
	}
	return out.Index, nil
}

// AwaitAll waits until every item is ready, then returns the first error
// among the futures' results in argument order (nil if none failed; a
// canceled timer's error is its cancellation, see [Timer.Err]). It
// takes a journal position: that it finished, or that the run's
// cancellation came first (it then returns an error matching
// [ErrCanceled]), is journaled. Receive cases cannot be awaited all at
// once (use [Receive]).
func AwaitAll(ctx Context, items ...Awaitable) error {
	for _, it := range items {
		if _, ok := it.(interface{ isReceiveCase() }); ok {
			return errors.New("durable: AwaitAll cannot wait for a ReceiveCase; use Receive")
		}
	}
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return err
	}
	defer x.leave()
	o, rec, settled := x.begin(ctx, kindAll, "")
	if settled {
		if err := outcomeErr(rec); err != nil {
			return err
		}
		return firstError(x, items)
	}
	allReady := func() bool {
		for _, it := range items {
			if ok, _, _ := it.poll(x); !ok {
				return false
			}
		}
		return true
	}
	ready := false
	x.waitFor(WaitAll, "", o.pos)
	x.wait(func() bool {
		ready = allReady()
		return ready || x.pendingCancel(ctx) != nil
	})
	if !ready {
		x.deliverLive(&o, kindAll, "", x.pendingCancel(ctx))
		return x.cancelErr
	}
	x.write(nil, o.record(kindAll, "", flagDone))
	return firstError(x, items)
}

// firstError returns the first error among the futures' results.
func firstError(x *executor, items []Awaitable) error {
	for _, it := range items {
		if f, ok := it.(interface{ result(*executor) error }); ok {
			if err := f.result(x); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *ReceiveCase[T]) isReceiveCase() {}

func (c *ReceiveCase[T]) channelName() string { return c.channel }

// result returns the future's error (decoding its value too).
func (f *Future[T]) result(x *executor) error {
	_, err := f.decode(x, f.st)
	return err
}
