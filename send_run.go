package durable

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// kindSend is the record kind of a SendTo call (record.go lists the
// kinds): Name is the target run id and the channel, Flags flagDone, with
// flagError and the error in Data if the target could not take it.
const kindSend uint8 = 11

// SendTo sends msg to run id on channel from inside a workflow, durably:
// the message and this run's record of the send are one commit, so the
// target receives it exactly once and replay does not send it again
// (Temporal's signal to an external workflow). It returns an error
// matching [ErrNotFound] if there is no run id and [ErrFinished] if it has
// finished (recorded: replay returns the same error), [ErrPayload] for a
// msg that cannot be encoded, or the run's cancellation. msg may be a
// json.RawMessage, as with [Send].
func SendTo(ctx Context, id, channel string, msg any) error {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return err
	}
	defer x.leave()
	if err := checkRunID(id); err != nil {
		return err
	}
	if id == "" {
		return &ArgError{Msg: "durable: SendTo: empty run id"}
	}
	if err := checkChannel(channel); err != nil {
		return err
	}
	name := id + "/" + channel
	o, rec, settled := x.begin(ctx, kindSend, name)
	if settled {
		return outcomeErr(rec)
	}
	var data []byte
	var err error
	if j, ok := msg.(json.RawMessage); ok {
		data, err = encodeJSONMessage(j, x.e.cfg.MaxPayloadBytes)
	} else {
		data, err = encodePayload(msg, x.e.cfg.MaxPayloadBytes)
	}
	if err != nil {
		return payloadErr(err, "message on channel %q for run %q", channel, id)
	}
	fail := func(err error) error {
		r := o.record(kindSend, name, flagDone|flagError)
		r.Data = encodeError(err)
		x.write(nil, r)
		return err
	}
	if x.replay != nil {
		x.replayEnd() // a replay check sends nothing
	}
	if err := x.sendTarget(id, channel); err != nil {
		return fail(err)
	}
	r := o.record(kindSend, name, flagDone)
	b := &journal.Batch{Append: []journal.Append{x.appendOf(r)}, Send: []journal.Message{{RunID: id, Channel: channel, Data: data}}}
	if x.aborted() {
		x.exit()
	}
	x.e.stampNow(b)
	stampRecords(b, x.e.clock)
	if err := x.e.store.Commit(context.Background(), b); err != nil {
		// The target may have finished since it was checked.
		if errors.Is(err, journal.ErrNotFound) || errors.Is(err, journal.ErrFinished) {
			if terr := x.sendTarget(id, channel); terr != nil {
				return fail(terr)
			}
		}
		x.stop(x.commitFailure(err))
		x.exit()
	}
	x.e.wakeOrLoad(id)
	return nil
}

// sendTarget reports why run id cannot take a message, or nil if it can.
func (x *executor) sendTarget(id, channel string) error {
	row, err := x.e.store.GetRun(context.Background(), id)
	switch {
	case err == nil && row.Status.Terminal():
		return errorf("durable: send to run %s on %s: the run is %s: %w", clip.Q(id), clip.Q(channel), Status(row.Status), ErrFinished)
	case isNotFound(err):
		return errorf("durable: send to run %s on %s: %w", clip.Q(id), clip.Q(channel), ErrNotFound)
	case err != nil:
		x.stop(x.commitFailure(err))
		x.exit()
	}
	return nil
}
