package durable

import (
	"context"
	"encoding/json"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Send delivers msg to run id on channel. The message is stored durably
// before Send returns, whether or not the run is waiting yet, and whether
// or not this engine has the run's workflow registered; the run receives
// it exactly once with [Receive]. Messages on one channel are received in
// the order Send stored them. It fails with an error matching
// [ErrNotFound] for an unknown run and [ErrFinished] for a run that has
// finished; a msg that cannot be encoded or is too large fails with
// [ErrPayload] and stores nothing.
//
// A msg of type json.RawMessage is a JSON message: it is stored as its
// JSON text and the receiving code decodes it with encoding/json into the
// type it receives (Receive[T] and OnReceive[T]), so a message can be sent
// from outside Go (the web API) without the receiver's type. It must be
// valid JSON; a JSON message that does not decode into T parks the run,
// like any message of the wrong type.
func Send(ctx context.Context, e *Engine, id, channel string, msg any) error {
	if e == nil {
		return errNilEngine
	}
	if err := checkRunID(id); err != nil {
		return err
	}
	if err := checkChannel(channel); err != nil {
		return err
	}
	if e.isClosed() {
		return ErrClosed
	}
	var data []byte
	var err error
	if j, ok := msg.(json.RawMessage); ok {
		data, err = encodeJSONMessage(j, e.cfg.MaxPayloadBytes)
	} else {
		data, err = encodePayload(msg, e.cfg.MaxPayloadBytes)
	}
	if err != nil {
		return payloadErr(err, "message on channel %q for run %q", channel, id)
	}
	if err := e.commit(ctx, &journal.Batch{Send: []journal.Message{{RunID: id, Channel: channel, Data: data}}}); err != nil {
		return errorf("durable: send to run %s on %s: %w", clip.Q(id), clip.Q(channel), err)
	}
	e.wakeOrLoad(id)
	return nil
}

// nextMessage reads the oldest message on channel from the run's inbox,
// unless the inbox was empty when the run was loaded and nothing woke the
// run since (a Send always wakes it): then there is none.
func (x *executor) nextMessage(channel string) ([]journal.Message, error) {
	if at := x.noMessagesAt.Load(); at != 0 {
		if _, gen := x.run.waitCh(); gen+1 == at {
			return nil, nil
		}
		x.noMessagesAt.Store(0)
	}
	return x.e.store.Messages(context.Background(), x.id, channel, 1)
}

// Receive waits for the next message sent to this run on channel and
// returns it, decoded into T. The message is taken from the inbox and
// recorded at this journal position in one commit, so it is received
// exactly once, and on replay the recorded message is returned. A message
// that does not decode into T parks the run (the message stays in the
// inbox). It returns the run's cancellation while waiting.
func Receive[T any](ctx Context, channel string) (T, error) {
	return receive[T](ctx, channel, 0)
}

// ReceiveTimeout is [Receive] that gives up after d: it then returns an
// error matching [ErrTimeout]. The deadline is journaled, so a restart
// neither extends nor resets it.
func ReceiveTimeout[T any](ctx Context, channel string, d time.Duration) (T, error) {
	if d <= 0 {
		d = 1 // an immediate timeout, unless a message is waiting
	}
	return receive[T](ctx, channel, d)
}

func receive[T any](ctx Context, channel string, timeout time.Duration) (T, error) {
	var zero T
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return zero, err
	}
	defer x.leave()
	if err := checkChannel(channel); err != nil {
		return zero, err
	}
	o, rec, settled := x.begin(ctx, kindReceive, channel)
	if settled {
		return decodeOutcome[T](x, rec)
	}
	deadline, err := x.receiveDeadline(ctx, &o, channel, timeout)
	if err != nil {
		return zero, err
	}
	var wake *time.Time // a receive with a deadline clears its wake time when done
	if !deadline.IsZero() {
		wake = &time.Time{}
	}
	if msg := x.waitMessage(ctx, channel, o.pos, deadline); msg != nil {
		return consume[T](x, &o, channel, msg, wake)
	}
	if cause := x.pendingCancel(ctx); cause != nil {
		x.deliverLive(&o, kindReceive, channel, cause)
		return zero, x.cancelErr
	}
	r := o.record(kindReceive, channel, flagDone|flagError)
	r.Data = encodeError(errorf("durable: receive on %s timed out after %v: %w", clip.Q(channel), timeout, ErrTimeout))
	x.write(wake, r)
	return zero, decodeError(r.Data)
}

// receiveDeadline returns the deadline of the receive at o (zero: none):
// the one recorded before a restart, or, for a timeout, one set now and
// journaled with the run's wake time. A cancellation pending before the
// wait begins is delivered instead, as the error.
func (x *executor) receiveDeadline(ctx Context, o *op, channel string, timeout time.Duration) (time.Time, error) {
	var deadline time.Time
	if len(o.recs) > 0 {
		deadline = o.recs[0].Time // set before a restart
		if deadline.IsZero() {
			// Only a receive with a timeout records something before it
			// is done, and that is its deadline. Without one the run
			// would wait for ever: the journal is damaged.
			x.park(errorf("durable: run %s: position %d holds a receive record without a deadline: %w", clip.Q(x.id), o.pos, journal.ErrCorrupt))
		}
	} else if timeout > 0 {
		if cause := x.pendingCancel(ctx); cause != nil {
			x.deliverLive(o, kindReceive, channel, cause)
			return time.Time{}, x.cancelErr
		}
		deadline = later(x.now(), timeout)
		r := o.record(kindReceive, channel, 0)
		r.Time = deadline
		x.write(&deadline, r)
	}
	if !deadline.IsZero() {
		x.e.wakes.add(x.id, deadline, false)
	}
	return deadline, nil
}

// waitMessage waits on the workflow goroutine for the oldest message on
// channel, the run's cancellation or the deadline (if not zero), and
// returns the message, or nil.
func (x *executor) waitMessage(ctx Context, channel string, pos uint32, deadline time.Time) *journal.Message {
	var msg *journal.Message
	var readErr error
	x.waitFor(WaitReceive, channel, pos)
	x.idleWait = deadline.IsZero() // else the deadline's record marked it
	defer func() { x.idleWait = false }()
	x.wait(func() bool {
		msgs, err := x.nextMessage(channel)
		switch {
		case err != nil:
			readErr = err
			return true
		case len(msgs) > 0:
			msg = &msgs[0]
			return true
		}
		return x.pendingCancel(ctx) != nil || (!deadline.IsZero() && !x.now().Before(deadline))
	})
	if readErr != nil {
		x.stop(x.commitFailure(readErr))
		x.exit()
	}
	return msg
}

// consume makes msg the outcome of the receive at o: it records it and
// removes it from the inbox in one commit, with the run's wake time if
// wake is not nil. A message that does not decode into T parks the run.
func consume[T any](x *executor, o *op, channel string, msg *journal.Message, wake *time.Time) (T, error) {
	var v T
	if err := decodePayload(msg.Data, &v, x.e.cfg.MaxPayloadBytes); err != nil {
		x.park(payloadErr(err, "message %d on channel %q of run %q", msg.Seq, channel, x.id))
	}
	r := o.record(kindReceive, channel, flagDone)
	r.Data = msg.Data
	b := new(journal.Batch)
	x.fill(b, wake, r)
	b.Consume = []journal.MessageKey{{RunID: x.id, Channel: channel, Seq: msg.Seq}}
	crashPoint("message-consume", x.id, int(o.pos))
	if !x.commit(b) {
		x.exit()
	}
	return v, nil
}
